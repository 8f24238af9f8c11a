"""The ``ollama`` command line of the ollama-deploy TEST DOUBLE.

Subcommands: serve, --version/-v/version, pull, list/ls, ps, rm, show, run,
stop, cp, create.  Output formats follow cmd/cmd.go of Ollama v0.32.15
(tablewriter tables, ``Error: ...`` on stderr with exit status 1).

The HTTP client is in cli_client.py, the table and time formats in
cli_format.py and the Modelfile parser in cli_modelfile.py.
"""

from __future__ import annotations

import json
import sys
import urllib.error

from .cli_client import CLIError, call, request, stream
from .cli_format import human_bytes, human_time, table
from .cli_modelfile import parse_modelfile
from .config import VERSION

NOTE = "note: this is the ollama-deploy test double, not Ollama"
BAR = "\u2595" + "\u2588" * 18 + "\u258f"


def cmd_version(_args) -> int:
    server = ""
    try:
        with request("GET", "/api/version", timeout=5) as resp:
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
