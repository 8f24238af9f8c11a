"""Keep a host serving when a change breaks it: the last configuration that passed the checks is
saved on the host, and restored when Ollama does not come up after a change, crash-loops, or fails
the smoke test or verify.

Example (deploy.py):
    apply_changes(changes)            # waits for the API; rolls back on a crash loop
    ...
    remember_good_config()            # after smoke + verify passed
"""
from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import StringCommand, deploy, operation

from ollama_deploy.control.summary import record_failure
from ollama_deploy.facts.config import APPLIED, LAST_GOOD, SAVED, FilesDigest, digest_command, ollama_files
from ollama_deploy.gocompat.hostport import connectable_host
from ollama_deploy.lib.dropins import DROPIN_DIR
from ollama_deploy.lib.operations import digest_recorded, files_stale, stamp_written
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.remote import api_wait_script, shell


def ollama_digest(prefix: str) -> dict:
    """The digests of Ollama's configuration: live, applied (running), saved (last good)."""
    return host.get_fact(FilesDigest, files=ollama_files(prefix), stamp=APPLIED, saved=SAVED)


def stale(prefix: str) -> bool:
    """On disk differs from what Ollama was started with: a run died between writing and restarting."""
    return files_stale(ollama_files(prefix), APPLIED, SAVED)


def config_applied(name: str, prefix: str):
    """Record that the running Ollama was started with the configuration now on disk."""
    return digest_recorded(name=name, files=ollama_files(prefix), stamp=APPLIED, saved=SAVED)


@operation()
def config_remembered(prefix: str = "/usr/local"):
    """
    Save the live unit and drop-ins as the last good configuration, unless already saved.

    **Example:**

    .. code:: python

        config_remembered(name="Remember this configuration as good")
    """
    digest = ollama_digest(prefix)
    live = digest["live"]
    if live == digest["saved"]:
        host.noop("configuration already saved as last good")
        return
    script = (f"set -e; rm -rf {LAST_GOOD}.new; mkdir -p {LAST_GOOD}.new/ollama.service.d; "
              f"cp /etc/systemd/system/ollama.service {LAST_GOOD}.new/; "
              f"for f in {DROPIN_DIR}/*.conf; do [ -e \"$f\" ] && cp \"$f\" {LAST_GOOD}.new/ollama.service.d/; done; "
              f"echo {live} > {LAST_GOOD}.new/digest; rm -rf {LAST_GOOD}; mv {LAST_GOOD}.new {LAST_GOOD}")
    yield StringCommand("sh", "-c", shlex.quote(script))


@deploy("Remember")
def remember_good_config():
    config_remembered(name="Remember this configuration as good", prefix=plan_for(host).settings.ollama_prefix)


def _shell(target, command: str) -> tuple[bool, str]:
    ok, out, err = shell(target, command)
    return ok, "\n".join(x for x in (out, err) if x)


def wait_serving(target, api: str, timeout: int) -> str | None:
    """None once the API answers; else why not (a crash loop is caught after two automatic restarts,
    without waiting out the timeout), with the last journal lines."""
    ok, why = _shell(target, api_wait_script(api, timeout))
    return None if ok else why.strip()


def _live_api(target) -> str:
    """The API address of the configuration now loaded (OLLAMA_HOST from systemd's view)."""
    _, env = _shell(target, "systemctl show ollama -p Environment --value")
    raw = next((item.split("=", 1)[1] for item in env.split() if item.startswith("OLLAMA_HOST=")), None)
    return f"http://{connectable_host(raw).hostport}"


def roll_back(target, timeout: int, prefix: str) -> str:
    """Restore the last good unit and drop-ins, restart, and say whether Ollama serves again."""
    ok, _ = _shell(target, f"test -f {SAVED}")
    if not ok:
        return "no earlier good configuration to roll back to"
    _shell(target, f"rm -f {DROPIN_DIR}/*.conf; cp {LAST_GOOD}/ollama.service /etc/systemd/system/; "
                   f"cp {LAST_GOOD}/ollama.service.d/*.conf {DROPIN_DIR}/ 2>/dev/null; "
                   "systemctl daemon-reload; systemctl restart ollama")
    still = wait_serving(target, _live_api(target), timeout)
    if still is None:  # the restored configuration is what Ollama now runs with
        _shell(target, stamp_written(APPLIED, f"$({digest_command(ollama_files(prefix))})"))
    return "rolled back to the last good configuration, which serves again" if still is None else \
        f"rolled back to the last good configuration, which does not serve either: {still}"


def fail_with_rollback(target, what: str, changed: bool, timeout: int) -> bool:
    """Fail this host with one line (when this run changed the configuration, roll it back first).
    Returns False: a python.call callback taking (state, host) returns it, and pyinfra fails the
    operation on it without the traceback an exception would print."""
    if changed:
        outcome = roll_back(target, timeout, plan_for(target, check=False).settings.ollama_prefix)
    else:
        outcome = "nothing changed in this run to roll back"
    record_failure(target.name, f"{what}; {outcome}")
    target.log_styled(f"{what}; {outcome}", fg="red", log_func=logger.error)
    return False
