"""Parsing a Modelfile into an /api/create request, on the client side as in cmd/cmd.go.

The client, not the server, checks and types PARAMETER values
(api.FormatParams), so an unknown parameter fails before a request is sent.
"""

from __future__ import annotations

from ollama_deploy.gocompat.params import format_params

from .cli_client import CLIError


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
            raise CLIError('command must be one of "from", "license", "template", "system", "adapter", '
                           '"renderer", "parser", "parameter", or "message"')
    if params:
        try:
            req["parameters"] = format_params(params)
        except ValueError as e:
            raise CLIError(str(e)) from None
    return req
