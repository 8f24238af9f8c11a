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


def api_wait_script(api: str, timeout: int) -> str:
    """The one wait for Ollama's API: a shell script that exits 0 once `api` answers, and otherwise
    prints why (no answer within `timeout` s, or a crash loop: two automatic restarts since it began,
    caught without waiting out the timeout) with the last journal lines, and exits 1."""
    return (f"start=$(systemctl show -p NRestarts --value ollama); end=$(($(date +%s) + {timeout})); why=''; "
            f"while [ $(date +%s) -lt $end ]; do "
            f"curl -fsS --max-time 1 {api}/api/version >/dev/null 2>&1 && exit 0; "
            f"n=$(systemctl show -p NRestarts --value ollama); "
            f"if [ $((n - start)) -ge 2 ]; then why=\"crash loop: restarted $((n - start)) times\"; break; fi; "
            f"sleep 0.2; done; "
            f"echo \"${{why:-no answer on {api} within {timeout}s}}; last journal lines: "
            f"$(journalctl -u ollama -n 8 -o cat --no-pager | sed ':a;N;$!ba;s/\\n/ | /g')\"; exit 1")


def shell(target, command: str) -> tuple[bool, str, str]:
    """(succeeded, stdout, stderr) of `sh -c command` on the host, escalated as its data says."""
    escalation = {key: target.data.get(key) for key in ESCALATION if target.data.get(key) is not None}
    ok, output = target.run_shell_command(StringCommand("sh", "-c", shlex.quote(command)), **escalation)
    return ok, "\n".join(output.stdout_lines), "\n".join(output.stderr_lines)
