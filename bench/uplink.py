"""The site's uplink on a testbed: everything the control node (and the outside registry, the mirror,
which runs beside it) sends to the hosts leaves through the testbed bridge's own egress, while
traffic between hosts (a host pulling from the site registry) is forwarded port to port and never
passes there. So an HTB tree on the bridge's egress is a shared, rate-limited uplink, and a fast
LAN between the hosts, with a class per kind of traffic counting its bytes.

This kernel has no netem (CONFIG_NET_SCH_NETEM is not set: "Specified qdisc kind is unknown"), so the
uplink's latency is not simulated; the benchmark counts the round trips instead.

Example:
    shape(tb, "100mbit"); ...; sent = sent_bytes(tb)   # {"ssh": ..., "outside registry": ..., ...}
"""
from __future__ import annotations

import re
import subprocess

from testbed.layout import MIRROR_PORT, SITE_REGISTRY_PORT, Testbed

# class minor -> (kind, u32 matches); the last class takes what no filter matched (apt proxy, DNS).
CLASSES = {
    10: ("ssh", [("dport", 22)]),
    20: ("outside registry", [("sport", MIRROR_PORT), ("sport", 443)]),
    30: ("site registry loads", [("dport", SITE_REGISTRY_PORT)]),
    40: ("other (apt proxy)", []),
}


def _tc(*args: str) -> str:
    return subprocess.run(["tc", *args], check=True, capture_output=True, text=True).stdout


def shape(tb: Testbed, rate: str) -> None:
    """Replace the bridge's egress with one `rate` link shared by the classes (each may use all of it)."""
    dev = tb.bridge
    subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)
    _tc("qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", str(max(CLASSES)), "r2q", "1000")
    _tc("class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", rate, "ceil", rate)
    for minor, (_, matches) in CLASSES.items():
        _tc("class", "add", "dev", dev, "parent", "1:1", "classid", f"1:{minor}", "htb", "rate", "1mbit",
            "ceil", rate)
        for direction, port in matches:
            _tc("filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                "match", "ip", direction, str(port), "0xffff", "flowid", f"1:{minor}")


def unshape(tb: Testbed) -> None:
    subprocess.run(["tc", "qdisc", "del", "dev", tb.bridge, "root"], capture_output=True)


# tc counts each frame whole: Ethernet (14), IPv4 (20) and TCP with timestamps (32) headers.
FRAME_HEADERS = 66


def sent_bytes(tb: Testbed) -> dict[str, int]:
    """Payload bytes each class has sent since `shape`: tc's byte counters less the frame headers of
    the packets it counted (about 4.5% at a 1500-byte MTU), so a model sent once counts as one copy."""
    out = _tc("-s", "class", "show", "dev", tb.bridge)
    sent = {}
    for m in re.finditer(r"class htb 1:(\d+) .*?\n\s*Sent (\d+) bytes (\d+) pkt", out):
        if int(m.group(1)) in CLASSES:
            sent[CLASSES[int(m.group(1))][0]] = int(m.group(2)) - FRAME_HEADERS * int(m.group(3))
    return sent
