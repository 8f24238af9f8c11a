"""The ``ollama`` command line of the ollama-deploy TEST DOUBLE.

Subcommands: serve, --version/-v/version, pull, list/ls, ps, rm, show, run,
stop, cp, create.  Output formats follow cmd/cmd.go of Ollama v0.32.15
(tablewriter tables, ``Error: ...`` on stderr with exit status 1).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.request

import goparse

from .config import VERSION

NOTE = "note: this is the ollama-deploy test double, not Ollama"
NOT_RUNNING = "could not connect to ollama server, run 'ollama serve' to start it"
BAR = "\u2595" + "\u2588" * 18 + "\u258f"
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


class CLIError(Exception):
    pass


# -- HTTP client (api.ClientFromEnvironment) -------------------------------------


def base_url() -> str:
    h = goparse.connectable_host(os.environ.get("OLLAMA_HOST"))
    host = h.host or "127.0.0.1"
    u = f"{h.scheme}://{goparse.go_join_host_port(host, h.port)}"
    return u + ("/" + h.path if h.path else "")


def _request(method: str, path: str, body=None, timeout: float | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url() + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/x-ndjson",
                                          "User-Agent": f"ollama/{VERSION} (test double)"})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - OLLAMA_HOST


def _error_of(e: urllib.error.HTTPError) -> str:
    raw = e.read().decode("utf-8", "replace")
    try:
        return json.loads(raw).get("error") or raw
    except ValueError:
        return raw.strip() or f"{e.code} {e.reason}"


def call(method: str, path: str, body=None):
    """One JSON request; raises CLIError with the server's error string."""
    try:
        with _request(method, path, body) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        raise CLIError(_error_of(e)) from None
    except (urllib.error.URLError, ConnectionError) as e:
        raise CLIError(NOT_RUNNING) from e
    return json.loads(raw) if raw.strip() else {}


def stream(path: str, body):
    """Yield NDJSON objects; an {"error": ...} line becomes CLIError."""
    try:
        resp = _request("POST", path, body)
    except urllib.error.HTTPError as e:
        raise CLIError(_error_of(e)) from None
    except (urllib.error.URLError, ConnectionError) as e:
        raise CLIError(NOT_RUNNING) from e
    with resp:
        for line in resp:
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("error"):
                raise CLIError(obj["error"])
            yield obj


# -- formatting -------------------------------------------------------------------


def human_bytes(b: int) -> str:
    """format.HumanBytes (decimal units, as `ollama list` prints SIZE)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if b >= size:
            v = b / size
            if v >= 10:
                return f"{int(v)} {unit}"
            if v != math.trunc(v):
                return f"{v:.1f} {unit}"
            return f"{int(v)} {unit}"
    return f"{b} B"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = int(seconds // 60)
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(seconds / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 14:
        return f"{h // 24} days"
    if h < 24 * 60:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 730:
        return f"{h // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def human_time(iso: str, zero: str) -> str:
    """format.HumanTime for an RFC3339 timestamp from the API."""
    m = _RFC3339.match(iso or "")
    if not m or iso.startswith("0001-01-01"):
        return zero
    tz = "+00:00" if m.group(2) == "Z" else m.group(2)
    delta = time.time() - dt.datetime.fromisoformat(m.group(1) + tz).timestamp()
    if delta / 3600 / 24 / 365 < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def table(header: list[str], rows: list[list[str]]) -> str:
    """tablewriter with NoWhiteSpace and 4-space padding (last column padded by one space)."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        lines.append("    ".join(cells) + " ")
    return "\n".join(lines) + "\n"


# -- commands ------------------------------------------------------------------------


def cmd_version(_args) -> int:
    server = ""
    try:
        with _request("GET", "/api/version", timeout=5) as resp:
            server = json.loads(resp.read()).get("version", "")
    except (OSError, ValueError, urllib.error.URLError):
        print("Warning: could not connect to a running Ollama instance")
    if server:
        print(f"ollama version is {server}")
    if server != VERSION:
        print(f"Warning: client version is {VERSION}")
    print(NOTE, file=sys.stderr)
    return 0


def _pull(name: str, insecure: bool = False) -> None:
    shown = set()
    for p in stream("/api/pull", {"model": name, "insecure": insecure}):
        status = p.get("status", "")
        if p.get("digest"):
            total, done = p.get("total", 0), p.get("completed", 0)
            if total and done >= total and p["digest"] not in shown:
                shown.add(p["digest"])
                print(f"{status}: 100% {BAR} {human_bytes(total)}", file=sys.stderr)
        else:
            print(status, file=sys.stderr)


def cmd_pull(args) -> int:
    insecure = "--insecure" in args
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        raise CLIError('accepts 1 arg(s), received %d' % len(names))
    _pull(names[0], insecure)
    return 0


def cmd_list(args) -> int:
    models = call("GET", "/api/tags").get("models") or []
    prefix = args[0].lower() if args else ""
    rows = [[m["name"], m["digest"][:12], human_bytes(m.get("size", 0)), human_time(m.get("modified_at", ""), "Never")]
            for m in models if m["name"].lower().startswith(prefix)]
    sys.stdout.write(table(["NAME", "ID", "SIZE", "MODIFIED"], rows))
    return 0


def cmd_ps(args) -> int:
    models = call("GET", "/api/ps").get("models") or []
    rows = []
    for m in models:
        if args and not m["name"].startswith(args[0]):
            continue
        size, vram = m.get("size", 0), m.get("size_vram", 0)
        if vram == 0:
            proc = "100% CPU"
        elif vram == size:
            proc = "100% GPU"
        elif vram > size or size == 0:
            proc = "Unknown"
        else:
            cpu = round((size - vram) / size * 100)
            proc = f"{cpu}%/{100 - cpu}% CPU/GPU"
        until = human_time(m.get("expires_at", ""), "Never")
        rows.append([m["name"], m["digest"][:12], human_bytes(size), proc, str(m.get("context_length", 0)), until])
    sys.stdout.write(table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows))
    return 0


def cmd_rm(args) -> int:
    if not args:
        raise CLIError("requires at least 1 arg(s), only received 0")
    for name in args:
        call("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


def cmd_cp(args) -> int:
    if len(args) != 2:
        raise CLIError("accepts 2 arg(s), received %d" % len(args))
    call("POST", "/api/copy", {"source": args[0], "destination": args[1]})
    print(f"copied '{args[0]}' to '{args[1]}'")
    return 0


def cmd_show(args) -> int:
    flags = {a for a in args if a.startswith("--")}
    names = [a for a in args if not a.startswith("-")]
    if len(names) != 1:
        raise CLIError("accepts 1 arg(s), received %d" % len(names))
    info = call("POST", "/api/show", {"model": names[0]})
    for flag, key in (("--modelfile", "modelfile"), ("--parameters", "parameters"), ("--template", "template"),
                      ("--system", "system"), ("--license", "license")):
        if flag in flags:
            print(info.get(key, ""))
            return 0
    d, mi = info.get("details", {}), info.get("model_info", {})
    arch = mi.get("general.architecture", "")
    rows = [("architecture", arch), ("parameters", d.get("parameter_size", "")),
            ("context length", str(mi.get(f"{arch}.context_length", ""))),
            ("embedding length", str(mi.get(f"{arch}.embedding_length", ""))),
            ("quantization", d.get("quantization_level", ""))]
    out = ["  Model"] + [f"    {k:<20}{v}" for k, v in rows] + ["", "  Capabilities"]
    out += [f"    {c}" for c in info.get("capabilities", [])]
    if info.get("parameters"):
        out += ["", "  Parameters"] + [f"    {line}" for line in info["parameters"].splitlines()]
    if info.get("license"):
        out += ["", "  License"] + [f"    {line}" for line in info["license"].splitlines()[:2]]
    print("\n".join(out) + "\n")
    return 0


def cmd_run(args) -> int:
    names = [a for a in args if not a.startswith("--")]
    if not names:
        raise CLIError("requires at least 1 arg(s), only received 0")
    name, prompt = names[0], " ".join(names[1:])
    if not prompt and not sys.stdin.isatty():
        prompt = sys.stdin.read()
    try:
        call("POST", "/api/show", {"model": name})
    except CLIError as e:
        if "not found" not in str(e):
            raise
        _pull(name)
    if not prompt:
        raise CLIError("the test double has no interactive mode; pass a prompt")
    for chunk in stream("/api/generate", {"model": name, "prompt": prompt}):
        sys.stdout.write(chunk.get("response", ""))
        sys.stdout.flush()
    sys.stdout.write("\n\n")
    return 0


def cmd_stop(args) -> int:
    if len(args) != 1:
        raise CLIError("accepts 1 arg(s), received %d" % len(args))
    call("POST", "/api/generate", {"model": args[0], "keep_alive": 0, "stream": False})
    return 0


def parse_modelfile(text: str) -> dict:
    """A small Modelfile parser: FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE (\"\"\"-quoted or one line)."""
    req: dict = {}
    params: dict[str, list[str]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        cmd, _, rest = line.partition(" ")
        cmd, rest = cmd.upper(), rest.strip()
        if rest.startswith('"""'):
            body = rest[3:]
            while '"""' not in body and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            rest = body.split('"""')[0]
        elif len(rest) >= 2 and rest[0] == rest[-1] == '"':
            rest = rest[1:-1]
        if cmd == "FROM":
            req["from"] = rest
        elif cmd == "PARAMETER":
            key, _, val = rest.partition(" ")
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1]
            params.setdefault(key.lower(), []).append(val)
        elif cmd in ("TEMPLATE", "SYSTEM"):
            req[cmd.lower()] = rest
        elif cmd == "LICENSE":
            req.setdefault("license", []).append(rest)
        else:
            raise CLIError(f'command must be one of "from", "license", "template", "system", "adapter", '
                           f'"renderer", "parser", "parameter", or "message"')
    if params:
        try:
            req["parameters"] = goparse.format_params(params)
        except ValueError as e:
            raise CLIError(str(e)) from None
    return req


def cmd_create(args) -> int:
    path = "Modelfile"
    names = []
    it = iter(args)
    for a in it:
        if a in ("-f", "--file"):
            path = next(it, "Modelfile")
        elif not a.startswith("-"):
            names.append(a)
    if len(names) != 1:
        raise CLIError("accepts 1 arg(s), received %d" % len(names))
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise CLIError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    req = parse_modelfile(text)
    req["model"] = names[0]
    for p in stream("/api/create", req):
        print(p.get("status", ""), file=sys.stderr)
    return 0


COMMANDS = {
    "pull": cmd_pull, "list": cmd_list, "ls": cmd_list, "ps": cmd_ps, "rm": cmd_rm, "cp": cmd_cp,
    "show": cmd_show, "run": cmd_run, "stop": cmd_stop, "create": cmd_create, "version": cmd_version,
}

USAGE = """Large language model runner (ollama-deploy TEST DOUBLE, not Ollama)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  create      Create a model
  show        Show information for a model
  run         Run a model
  stop        Stop a running model
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  cp          Copy a model
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information
"""


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] in ("-v", "--version"):
        return cmd_version(args[1:])
    if args[0] == "serve":
        from .server import serve

        return serve()
    fn = COMMANDS.get(args[0])
    if fn is None:
        print(f'Error: unknown command "{args[0]}" for "ollama"', file=sys.stderr)
        return 1
    try:
        return fn(args[1:])
    except CLIError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

