"""Running a shell command on a host from inside a python.call (checks that run at execution time).

A command run this way does not get the operation arguments pyinfra gives operations and facts,
so the host's privilege escalation (`_sudo` and friends in its data, for a deploy over a non-root
SSH user) is passed on here.

Example:
    ok, out, err = shell(host, "systemctl show -p MainPID ollama")
"""
from __future__ import annotations

import shlex

from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS

ESCALATION = [key for key in CONNECTOR_ARGUMENT_KEYS if key.startswith(("_sudo", "_use_sudo", "_preserve_sudo",
                                                                        "_su_", "_use_su", "_doas"))]


def shell(target, command: str) -> tuple[bool, str, str]:
    """(succeeded, stdout, stderr) of `sh -c command` on the host, escalated as its data says."""
    escalation = {key: target.data.get(key) for key in ESCALATION if target.data.get(key) is not None}
    ok, output = target.run_shell_command(StringCommand("sh", "-c", shlex.quote(command)), **escalation)
    return ok, "\n".join(output.stdout_lines), "\n".join(output.stderr_lines)
