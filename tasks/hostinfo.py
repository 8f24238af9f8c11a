"""Host facts the deploy plans with, honouring `facts_override` from inventory data.

`facts_override` exists for hosts whose real facts cannot show what they are (the testbed's
DGX Spark container runs on x86_64 but is an arm64 machine), and for operators correcting a
misdetection. Keys: arch.

Example:
    machine_arch(host)   # "aarch64"
"""
from __future__ import annotations

from pyinfra.facts.server import Arch


def machine_arch(host) -> str:
    override = (host.data.get("facts_override") or {}).get("arch")
    return override or host.get_fact(Arch)
