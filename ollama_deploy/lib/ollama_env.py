"""The one declaration of the OLLAMA_* variables Ollama 0.32.15 reads, and how it reads each.

`READS` is what `read_source()` finds in the pinned version's Go source, written out, so an
upgrade shows its differences as one diff: `python -m ollama_deploy.lib.ollama_env <ollama source dir>`
prints the table for that source and what differs from `READS` (exit 1 when anything does); a
conformance test runs it against the pinned Go module.

For each variable:
* `reader`: the envconfig constructor that reads it (`Bool`, `BoolWithDefault`, `String`,
  `Uint(<default>)`, `Uint64(<default>)`), `func <Name>` for envconfig's own parsing functions
  (Host, KeepAlive, ...), or `getenv` where code outside envconfig reads it by name;
* `logged`: in envconfig.AsMap(), so printed in the `server config` line at every start;
* `files`: for variables not logged, the files that read them (they tell the server from the
  command-line client, the desktop app and the agent).

Example:
    READS["OLLAMA_NUM_PARALLEL"]          # Var(reader='Uint(1)', logged=True, files=())
    side("OLLAMA_AUTH")                   # 'client'
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ollama_deploy.gocompat.duration import go_format_duration
from ollama_deploy.gocompat.envconfig import ollama_bool, ollama_uint, parse_keep_alive, parse_load_timeout
from ollama_deploy.gocompat.hostport import ollama_host

# Code of the `ollama` command-line client, its agent and the desktop app, not of `ollama serve`.
CLIENT_DIRS = ("cmd/", "app/", "agent/", "api/")


@dataclass(frozen=True)
class Var:
    reader: str
    logged: bool = True
    files: tuple[str, ...] = ()


READS: dict[str, Var] = {
    "OLLAMA_AGENT_DISABLE_SHELL": Var("getenv", False, ("cmd/agent_tui.go",)),
    "OLLAMA_AGENT_DISABLE_WEBSEARCH": Var("getenv", False, ("cmd/agent_tui.go",)),
    "OLLAMA_API_KEY": Var("getenv", False, ("cmd/launch/claude_desktop.go", "cmd/launch/qwen.go")),
    "OLLAMA_APP_DB_PATH": Var("getenv", False, ("app/cmd/app/app.go",)),
    "OLLAMA_AUTH": Var("Bool", False, ("api/client.go",)),
    "OLLAMA_CLOUD_BASE_URL": Var("getenv", False, ("server/cloud_proxy.go",)),
    "OLLAMA_CONTEXT_LENGTH": Var("Uint(0)"),
    "OLLAMA_CORS": Var("getenv", False, ("app/ui/ui.go",)),
    "OLLAMA_DEBUG": Var("func LogLevel"),
    "OLLAMA_DEBUG_LOG_REQUESTS": Var("Bool"),
    "OLLAMA_DOT_COM_URL": Var("getenv", False, ("app/ui/ui.go",)),
    "OLLAMA_EDITOR": Var("String"),
    "OLLAMA_EXPERIMENT": Var("getenv", False, ("server/routes.go",)),
    "OLLAMA_FLASH_ATTENTION": Var("BoolWithDefault"),
    "OLLAMA_GO_TEMPLATE": Var("BoolWithDefault"),
    "OLLAMA_GPU_OVERHEAD": Var("Uint64(0)"),
    "OLLAMA_HOST": Var("func Host"),
    "OLLAMA_IGPU_ENABLE": Var("BoolWithDefault"),
    "OLLAMA_KEEP_ALIVE": Var("func KeepAlive"),
    "OLLAMA_KV_CACHE_TYPE": Var("String"),
    "OLLAMA_LAUNCH_DSH_API_KEY": Var("getenv", False, ("cmd/launch/deepseek_harness.go",)),
    "OLLAMA_LLAMA_CPP_COMPAT": Var("getenv", False, ("server/quantization.go",)),
    "OLLAMA_LLM_LIBRARY": Var("String"),
    "OLLAMA_LOAD_TIMEOUT": Var("func LoadTimeout"),
    "OLLAMA_MAX_LOADED_MODELS": Var("Uint(0)"),
    "OLLAMA_MAX_QUEUE": Var("Uint(512)"),
    "OLLAMA_MAX_TRANSFER_STREAMS": Var("Uint(4)"),
    "OLLAMA_MODELS": Var("func Models"),
    "OLLAMA_NOHISTORY": Var("Bool"),
    "OLLAMA_NOPRUNE": Var("Bool"),
    "OLLAMA_NO_CLOUD": Var("Bool"),
    "OLLAMA_NUM_PARALLEL": Var("Uint(1)"),
    "OLLAMA_ORIGINS": Var("func AllowedOrigins"),
    "OLLAMA_REMOTES": Var("func Remotes"),
    "OLLAMA_SCHED_SPREAD": Var("Bool"),
    "OLLAMA_SKILLS": Var("getenv", False, ("agent/skills.go",)),
    "OLLAMA_VULKAN": Var("BoolWithDefault"),
}


def side(name: str) -> str:
    """'server' when `ollama serve` reads `name` (logged, or read outside the client's code),
    'client' when only the command-line client, agent or desktop app does, '' when nothing does."""
    var = READS.get(name)
    if var is None:
        return ""
    if var.logged or any(not f.startswith(CLIENT_DIRS) for f in var.files):
        return "server"
    return "client"


def logged_form(env: str, raw: str) -> str:
    """How Ollama prints a value in `server config` (envconfig.Values): parsed by its reader, then %v.

    >>> logged_form("OLLAMA_FLASH_ATTENTION", "1"), logged_form("OLLAMA_KEEP_ALIVE", "3600")
    ('true', '1h0m0s')
    """
    reader = READS[env].reader if env in READS else "String"
    if reader == "func KeepAlive":
        return go_format_duration(parse_keep_alive(raw))
    if reader == "func LoadTimeout":
        return go_format_duration(parse_load_timeout(raw))
    if reader == "func Host":
        return ollama_host(raw).url
    if reader.startswith("Bool"):
        return "true" if ollama_bool(raw) else "false"
    if reader.startswith("Uint"):  # Uint(<default>) / Uint64(<default>)
        return str(ollama_uint(raw, int(reader.split("(")[1].rstrip(")"))))
    return raw


# -- reading the Go source -----------------------------------------------------------------------

_CTOR = re.compile(r'^\s*(?:var\s+)?(\w+)\s*=\s*(BoolWithDefault|Bool|String|Uint64|Uint)'
                   r'\("(OLLAMA_\w+)"(?:,\s*(\w+))?\)', re.M)
_VAR_CALL = re.compile(r'Var\("(OLLAMA_\w+)"\)')
_LOGGED = re.compile(r'(?:^\s*|ret\[)"(OLLAMA_\w+)"\]?\s*[:=]', re.M)
# A read by name outside envconfig: os.Getenv/LookupEnv or an envconfig constructor with the
# literal, or a named constant holding it (log attribute keys and messages are not reads).
_READ_ELSEWHERE = re.compile(r'(?:os\.Getenv|os\.LookupEnv|envconfig\.\w+)\(\s*"(OLLAMA_\w+)"'
                             r'|^\s*(?:const\s+|var\s+)?\w+\s*=\s*"(OLLAMA_\w+)"\s*$', re.M)


def _go_files(src: Path):
    for path in sorted(src.rglob("*.go")):
        rel = path.relative_to(src).as_posix()
        if not rel.endswith("_test.go") and "/testdata/" not in f"/{rel}":
            yield rel, path.read_text(errors="replace")


def read_source(src: Path) -> dict[str, Var]:
    """The table READS holds, found in an Ollama source tree (envconfig/config.go and every other
    non-test Go file)."""
    config = (src / "envconfig" / "config.go").read_text()
    funcs = {m.group(1): body for m, body in zip(re.finditer(r"^func (\w+)\(", config, re.M),
                                                 re.split(r"^func \w+\(", config, flags=re.M)[1:])}
    readers, idents = {}, {}
    for m in _CTOR.finditer(config):
        readers[m.group(3)] = m.group(2) + (f"({m.group(4)})" if m.group(4) else "")
        idents[m.group(3)] = m.group(1)
    for fname, body in funcs.items():
        for name in _VAR_CALL.findall(body):
            readers.setdefault(name, f"func {fname}")
    logged = set(_LOGGED.findall(funcs.get("AsMap", "")))
    callers: dict[str, set[str]] = {}
    for rel, text in _go_files(src):
        if rel.startswith("envconfig/"):
            continue
        for name, ident in idents.items():
            if name not in logged and re.search(rf"\benvconfig\.{ident}\(", text):
                callers.setdefault(name, set()).add(rel)
        for name in {a or b for a, b in _READ_ELSEWHERE.findall(text)} - set(readers):
            callers.setdefault(name, set()).add(rel)
    table = {}
    for name in sorted(set(readers) | set(callers)):
        files = () if name in logged else tuple(sorted(callers.get(name, ())))
        table[name] = Var(readers.get(name, "getenv"), name in logged, files)
    return table


def differences(found: dict[str, Var], declared: dict[str, Var] = READS) -> list[str]:
    """One line per variable that READS gets wrong for `found`."""
    lines = []
    for name in sorted(set(found) | set(declared)):
        have, want = declared.get(name), found.get(name)
        if have != want:
            lines.append(f"{name}: declared {have}, the source has {want}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ollama_deploy.lib.ollama_env <ollama source dir>", file=sys.stderr)
        return 2
    found = read_source(Path(argv[0]))
    for name, var in found.items():
        print(f"    {name!r}: {var!r},".replace("Var(reader=", "Var(").replace(" logged=", " ").replace(" files=", " "))
    diff = differences(found)
    print("\n".join(diff) if diff else f"READS matches {argv[0]}", file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
