"""Where a testbed lives and what it is made of: names, addresses, paths.

A testbed is a named set of hosts (systemd-nspawn containers) sharing one cached base rootfs.
Several testbeds can exist at once (the default one, a benchmark one, a failure-test one): each
has its own state directory, bridge, subnet and network namespaces, all derived from its name.

Example:
    tb = Testbed.named("tb", hosts=3)
    [h.name for h in tb.hosts]   # ['cpu-xeon-1', 'dual-gpu-1', 'dgx-spark-1']
"""
from __future__ import annotations

import ipaddress
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ollama_deploy.lib.profiles import PROFILES as PROFILE_DECLARATIONS
from ollama_deploy.lib.site_registry_settings import GROUP as SITE_REGISTRY_GROUP
from ollama_deploy.lib.site_registry_settings import SiteRegistrySettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Hosts take profiles in this order, so N hosts cover every profile once N >= 3.
PROFILES = tuple(PROFILE_DECLARATIONS)
STATE_ROOT = Path(os.environ.get("OLLAMA_TESTBED_STATE", "/var/lib/ollama-testbed"))
CACHE_ROOT = Path(os.environ.get("OLLAMA_TESTBED_CACHE", "/var/cache/ollama-testbed"))
DEFAULT_NAME = "tb"
MIRROR_PORT = 8701
APT_PROXY_PORT = 3143  # not apt-cacher-ng's 3142, which its Debian package may already serve
# The version the test double reports; the deploy pins the same version for the real artifact.
# Which Ollama each profile's hosts run: the real build (testbed/real_ollama.py, CPU only) or the test
# double (testbed/double/), which stands in where a GPU is needed. OLLAMA_TESTBED_OLLAMA overrides per
# profile, e.g. "cpu_xeon=double".
SITE_REGISTRY = SITE_REGISTRY_GROUP  # the profile (and inventory group) of site registry hosts
SITE_REGISTRY_PORT = SiteRegistrySettings.model_fields["site_registry_port"].default
OLLAMA_KINDS = {"cpu_xeon": "real", "dual_gpu": "double", "dgx_spark": "double"}
# Linux interface names are limited to 15 bytes; "<name>-br" and "<name>v<NN>" must fit.
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class TestbedError(Exception):
    """A testbed step failed; str() is one line naming the host, what failed and the log."""

    __test__ = False  # not a pytest test class, despite the name


@dataclass(frozen=True)
class Host:
    """One container: its inventory name, profile, address and the paths of its overlay."""

    testbed: Testbed
    index: int
    profile: str
    name: str
    ip: str

    @property
    def dir(self) -> Path:
        return self.testbed.state_dir / "hosts" / self.name

    @property
    def root(self) -> Path:
        return self.dir / "root"  # overlay mount: base (read-only) + upper (this host's writes)

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def machine(self) -> str:
        return f"{self.testbed.name}-{self.name}"

    @property
    def netns(self) -> str:
        return self.machine

    @property
    def veth(self) -> str:
        return f"{self.testbed.name}v{self.index}"


@dataclass(frozen=True)
class Testbed:
    """A named testbed: `hosts` containers on `subnet`, state under STATE_ROOT/name."""

    __test__ = False

    name: str
    host_count: int
    subnet: ipaddress.IPv4Network
    hosts: tuple[Host, ...] = field(default=(), compare=False)  # the Ollama hosts
    base: str = "full"  # the host image: testbed.rootfs.BASES
    # Hosts of the inventory's site_registry group (profile "site_registry"), after the Ollama hosts;
    # with any, the Ollama hosts pull their models from the first (ollama_site_registry).
    registry_hosts: tuple[Host, ...] = field(default=(), compare=False)

    @classmethod
    def named(cls, name: str = DEFAULT_NAME, hosts: int = 3, subnet: str | None = None,
              base: str = "full", site_registries: int = 0, profiles: tuple[str, ...] = PROFILES) -> Testbed:
        """`profiles`: the order hosts take profiles in (the benchmarks use CPU hosts only, so real Ollama)."""
        if not _NAME_RE.match(name):
            raise TestbedError(f"testbed name {name!r}: use 1-8 lowercase letters/digits, starting with a letter")
        if not 1 <= hosts <= 200 or not 0 <= site_registries <= 4:
            raise TestbedError(f"testbed {name}: host count {hosts} must be between 1 and 200, "
                               f"site registries {site_registries} between 0 and 4")
        net = ipaddress.IPv4Network(subnet or _default_subnet(name))
        tb = cls(name, hosts, net, base=base)
        counters: dict[str, int] = {}
        members = []
        for i in range(hosts):
            profile = profiles[i % len(profiles)]
            counters[profile] = counters.get(profile, 0) + 1
            name_i = f"{profile.replace('_', '-')}-{counters[profile]}"
            members.append(Host(tb, i, profile, name_i, str(net.network_address + 10 + i)))
        object.__setattr__(tb, "hosts", tuple(members))
        object.__setattr__(tb, "registry_hosts", tuple(
            Host(tb, hosts + j, SITE_REGISTRY, f"site-registry-{j + 1}", str(net.network_address + 10 + hosts + j))
            for j in range(site_registries)))
        return tb

    @property
    def machines(self) -> tuple[Host, ...]:
        """Every container: the Ollama hosts, then the site registries."""
        return self.hosts + self.registry_hosts

    @property
    def site_registry_url(self) -> str | None:
        """What the Ollama hosts pull from (the first registry host's front), or None without one."""
        return f"https://{self.registry_hosts[0].name}:{SITE_REGISTRY_PORT}" if self.registry_hosts else None

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def gateway(self) -> str:
        """The control node's address on the bridge: the mirror listens here."""
        return str(self.subnet.network_address + 1)

    @property
    def apt_proxy(self) -> str:
        """The testbed's apt proxy (apt-cacher-ng on the bridge address), as a site's hosts have one."""
        return f"http://{self.gateway}:{APT_PROXY_PORT}"

    @property
    def mirror_url(self) -> str:
        return f"http://{self.gateway}:{MIRROR_PORT}"

    @property
    def release_base_url(self) -> str:
        """Same shape as https://github.com/ollama/ollama/releases/download (then /vX.Y.Z/file)."""
        return f"{self.mirror_url}/ollama/releases/download"

    @property
    def double_release_base_url(self) -> str:
        """The test double's releases: a path of their own, so the real build keeps the official one."""
        return f"{self.mirror_url}/double/releases/download"

    def ollama_kind(self, profile: str) -> str:
        """'real' or 'double' for a profile's hosts (OLLAMA_KINDS, as overridden by OLLAMA_TESTBED_OLLAMA)."""
        return ollama_kinds()[profile]

    @property
    def mirror_root(self) -> Path:
        return self.state_dir / "mirror"

    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def inventory_path(self) -> Path:
        """The default testbed's inventory sits with the project's; others keep theirs in state."""
        if self.name == DEFAULT_NAME:
            return PROJECT_ROOT / "inventory" / "testbed.py"
        return self.state_dir / "inventory.py"

    def host(self, name: str) -> Host:
        for h in self.machines:
            if h.name == name:
                return h
        raise TestbedError(f"testbed {self.name}: no host named {name!r}")


def _default_subnet(name: str) -> str:
    # The default testbed gets a fixed, documented subnet; others get one derived from the name,
    # so two testbeds can run side by side without configuration.
    third = 0 if name == DEFAULT_NAME else 1 + zlib.crc32(name.encode()) % 250
    return f"10.201.{third}.0/24"


def ollama_kinds() -> dict[str, str]:
    kinds = dict(OLLAMA_KINDS)
    for item in filter(None, os.environ.get("OLLAMA_TESTBED_OLLAMA", "").replace(" ", "").split(",")):
        profile, _, kind = item.partition("=")
        if profile not in kinds or kind not in ("real", "double"):
            raise TestbedError(f"OLLAMA_TESTBED_OLLAMA: {item!r}: use <profile>=real|double, profiles {PROFILES}")
        if kind == "real" and profile != "cpu_xeon":
            raise TestbedError(f"OLLAMA_TESTBED_OLLAMA: {item!r}: the real build is CPU-only; "
                               f"{profile} needs a GPU, so its hosts run the double")
        kinds[profile] = kind
    return kinds
