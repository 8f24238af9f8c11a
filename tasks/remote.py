"""Running a shell command on a host from inside a python.call (checks that run at execution time).

Example:
    ok, out, err = shell(host, "systemctl show -p MainPID ollama")
"""
from __future__ import annotations

import shlex

from pyinfra.api import StringCommand


def shell(target, command: str) -> tuple[bool, str, str]:
    """(succeeded, stdout, stderr) of `sh -c command` on the host."""
    ok, output = target.run_shell_command(StringCommand("sh", "-c", shlex.quote(command)))
    return ok, "\n".join(output.stdout_lines), "\n".join(output.stderr_lines)
