"""Custom pyinfra operations for Ollama. Each checks the host at execution time and yields
nothing when it is already in the wanted state, so a second deploy reports no change.
"""
from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, QuoteString, StringCommand, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from ollama_deploy.control.siteregistry import SiteRegistryError
from ollama_deploy.facts.config import FilesDigest
from ollama_deploy.facts.ollama import (
    RELEASE_MARKER,
    InstalledRelease,
    OllamaVersion,
    PathStates,
    UnitState,
    UserGroups,
)
from ollama_deploy.lib.remote import api_wait_script

# Replaces bin/ollama and lib/ollama only after the download's sha256 matched and it unpacked;
# the previous lib/ollama is swapped out by rename, never half-overwritten.
_INSTALL_SCRIPT = """set -eu
mkdir -p {cache} {prefix}/bin {prefix}/lib
work=$(mktemp -d {cache}/release.XXXXXX)
trap 'rm -rf "$work" {cleanup}' EXIT
curl -fsSL --retry 3 --connect-timeout 10 {auth}{cacert} -o "$work/artifact" {url}
if ! echo "{sha256}  $work/artifact" | sha256sum -c --status; then
    echo "ollama-deploy: sha256 mismatch for {url}: expected {sha256}," \
         "got $(sha256sum "$work/artifact" | cut -d' ' -f1); nothing replaced" >&2
    exit 1
fi
mkdir "$work/tree"
tar --zstd -xf "$work/artifact" -C "$work/tree"
test -x "$work/tree/bin/ollama" || {{ echo "ollama-deploy: {url} has no bin/ollama; nothing replaced" >&2; exit 1; }}
echo {sha256} > "$work/tree/{marker}"
rm -rf {prefix}/lib/ollama.previous
if [ -d {prefix}/lib/ollama ]; then mv {prefix}/lib/ollama {prefix}/lib/ollama.previous; fi
mv "$work/tree/lib/ollama" {prefix}/lib/ollama
mv -f "$work/tree/bin/ollama" {prefix}/bin/ollama
rm -rf {prefix}/lib/ollama.previous
"""


def stamp_written(stamp: str, digest: str) -> str:
    """Shell: write `digest` (a value, or a $(command)) to the file `stamp`, whole or not at all."""
    return f"mkdir -p {stamp.rsplit('/', 1)[0]} && echo {digest} > {stamp}.new && mv {stamp}.new {stamp}"


def files_stale(files: str, stamp: str, saved: str | None = None) -> bool:
    """`files` on disk differ from what their service last (re)started with (see FilesDigest)."""
    digest = host.get_fact(FilesDigest, files=files, stamp=stamp, saved=saved)
    return digest["live"] != digest["applied"]


@operation()
def digest_recorded(files: str, stamp: str, saved: str | None = None):
    """
    Record in `stamp` that the service reading `files` runs with them as they are now, unless it is
    recorded already (see FilesDigest; `saved` as the caller's other reads of the fact, so they
    share one).

    **Example:**

    .. code:: python

        digest_recorded(name="Record the registry's config", files="/etc/a.yml", stamp="/var/lib/x/a")
    """
    digest = host.get_fact(FilesDigest, files=files, stamp=stamp, saved=saved)
    if digest["live"] == digest["applied"]:
        host.noop("applied configuration already recorded")
        return
    yield StringCommand("sh", "-c", shlex.quote(stamp_written(stamp, digest["live"])))


def site_loaded(state, host, load) -> bool:
    """A FunctionCommand before a host fetches from the site registry: the control node loads the
    registry (once per run, see control.siteregistry); its failure is one line, not a traceback."""
    try:
        load()
    except SiteRegistryError as e:
        host.log(str(e), logger.error)
        return False
    return True


@operation()
def release_installed(url: str, sha256: str, prefix: str = "/usr/local", cache_dir: str = "/var/cache/ollama-deploy",
                      curl_config: str | None = None, load=None, cacert: str | None = None):
    """
    Install an Ollama release artifact (a .tar.zst with bin/ollama and lib/ollama/) under `prefix`.

    + url: the artifact's URL
    + sha256: its expected sha256 (hex); checked before anything is replaced
    + prefix: install prefix
    + cache_dir: where the download is staged
    + curl_config: a curl config file on the host holding the mirror's Authorization header (so the
      secret is in no command line or log); removed once used
    + load: called on the control node before the download (the site registry's load_release)
    + cacert: the CA certificate (a host path) the download's server is checked against, in place of
      the host's trust store (the site CA, for a release from the site registry)

    **Example:**

    .. code:: python

        release_installed(
            name="Install Ollama 0.32.15",
            url="https://github.com/ollama/ollama/releases/download/v0.32.15/ollama-linux-amd64.tar.zst",
            sha256="…",
        )
    """
    if host.get_fact(InstalledRelease, prefix=prefix) == sha256:
        host.noop(f"Ollama artifact {sha256[:12]} already installed in {prefix}")
        return
    q = shlex.quote
    # An artifact uploaded from the control node (air-gapped) is not kept once installed.
    uploaded = url.removeprefix("file://") if url.startswith(f"file://{cache_dir}/") else None
    # Removed on any exit: an uploaded artifact (it is not kept) and the credentials file.
    cleanup = " ".join(q(p) for p in (uploaded, curl_config) if p)
    script = _INSTALL_SCRIPT.format(cache=q(cache_dir), prefix=q(prefix), url=q(url), sha256=sha256,
                                    marker=RELEASE_MARKER, cleanup=cleanup,
                                    auth=f"-K {q(curl_config)}" if curl_config else "",
                                    cacert=f" --cacert {q(cacert)}" if cacert else "")
    if load is not None:
        yield FunctionCommand(site_loaded, (load,), {})
    yield StringCommand("sh", "-c", q(script))


@operation()
def api_answers(api: str = "http://127.0.0.1:11434", timeout: int = 60):
    """
    Wait until Ollama's API answers on `api`, failing the host (with the last journal lines) after `timeout` s.

    **Example:**

    .. code:: python

        api_answers(name="Ollama API answers", timeout=60)
    """
    if host.get_fact(OllamaVersion, api=api):
        host.noop(f"Ollama answers on {api}")
        return
    yield StringCommand("sh", "-c", shlex.quote(api_wait_script(api, timeout) + " >&2"))


@operation()
def account_applied(user: str, groups: list, dirs: list, sysusers: str, tmpfiles: str):
    """
    Make the system account and its directories from a sysusers.d and a tmpfiles.d file (written
    before this), when the account is missing, lacks one of `groups`, or a directory in `dirs` is
    not the account's with mode 755. One check command each for the account and the directories.

    **Example:**

    .. code:: python

        account_applied(name="User ollama and its directories", user="ollama", groups=["video"],
                        dirs=["/usr/share/ollama", "/usr/share/ollama/.ollama"],
                        sysusers="/etc/sysusers.d/ollama.conf", tmpfiles="/etc/tmpfiles.d/ollama.conf")
    """
    member_of = host.get_fact(UserGroups, user=user)
    states = host.get_fact(PathStates, paths=dirs)
    if member_of and set(groups) <= member_of and all(states.get(d) == ("dir", f"{user}:{user}:755") for d in dirs):
        host.noop(f"user {user} and its directories are in place")
        return
    yield StringCommand("systemd-sysusers", QuoteString(sysusers), "&&",
                        "systemd-tmpfiles", "--create", QuoteString(tmpfiles))


@operation()
def unit_state(unit: str, enabled: bool = False, running: bool = False):
    """
    Enable a systemd unit at boot and/or start it, when it is not already; one cheap check.
    Enabling uses --no-reload: the deploy reloads systemd once, in its restart step, instead of
    `systemctl enable` reloading it a second time on every host.

    **Example:**

    .. code:: python

        unit_state(name="Ollama enabled at boot", unit="ollama.service", enabled=True)
        unit_state(name="Ollama running", unit="ollama.service", running=True)
    """
    state = host.get_fact(UnitState, unit=unit)
    if enabled and state["enabled"] not in ("enabled", "enabled-runtime", "static"):
        yield StringCommand("systemctl", "enable", "--no-reload", QuoteString(unit))
    if running and state["active"] != "active":
        yield StringCommand("systemctl", "start", QuoteString(unit))


@operation()
def files_content(files: dict, mode: str = "644"):
    """
    Make each root-owned file in `files` hold exactly its content, or remove it where the content
    is None.

    New contents are uploaded beside their files under names systemd ignores, then renamed over
    them: a run killed mid-upload never leaves a half-written unit or drop-in for systemd to read.
    One operation for a set of files that change together (the drop-ins), so every
    host runs the same operations in the same order whichever files it needs, and a run costs one
    check command for all of them and one command to put the changed ones in place.

    **Example:**

    .. code:: python

        files_content(name="Drop-ins", files={
            "/etc/systemd/system/ollama.service.d/performance.conf": "[Service]\nEnvironment=\"OLLAMA_KEEP_ALIVE=1h\"\n",
            "/etc/systemd/system/ollama.service.d/10-gpu.conf": None})
    """
    parents = sorted({path.rsplit("/", 1)[0] or "/" for path in files})
    states = host.get_fact(PathStates, paths=[*files, *parents])
    wanted = {path: hashlib.sha256(content.encode()).hexdigest() for path, content in files.items() if content is not None}
    removed = [path for path, content in files.items() if content is None and path in states]
    changed = [path for path in wanted if states.get(path) != (wanted[path], f"root:root:{mode}")]
    if not removed and not changed:
        host.noop(f"{len(files)} files up to date")
        return
    missing = [QuoteString(parent) for parent in parents if parent not in states]
    if changed and missing:
        yield StringCommand("mkdir", "-p", *missing)
    staged = {path: f"{path}.ollama-deploy-new" for path in changed}  # not *.conf / *.service: systemd never reads it
    for path in changed:
        _log_diff(path, files[path])
        yield FileUploadCommand(StringIO(files[path]), staged[path])
    script = [f"rm -f {quoted(removed)}"] if removed else []
    if changed:
        names = quoted(staged[path] for path in changed)
        script += [f"chown root:root {names}", f"chmod {mode} {names}"]
        script += [f"mv -f {shlex.quote(staged[path])} {shlex.quote(path)}" for path in changed]
    yield StringCommand("sh", "-c", QuoteString(" && ".join(script)))


def quoted(paths) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def _log_diff(path: str, content: str):
    """What `pyinfra --diff` shows for a file this run rewrites."""
    if host.state.config.DIFF:
        old = [line + "\n" for line in host.get_fact(FileContents, path=path) or []]
        host.log(f"Will write {path}", logger.info)
        for line in generate_color_diff(old, content.splitlines(keepends=True)):
            logger.info("  %s", line)
