"""SSH connections to hosts send each packet at once (TCP_NODELAY): with Nagle's algorithm every small
request waited out the peer's delayed ACK (~40 ms a command; see tasks/tunnel.without_nagle)."""
import socket

from ollama_deploy.control.tunnel import ssh_client
from testbed.deployrun import run_deploy

# A deploy file that records, per host, TCP_NODELAY on pyinfra's own connection before and after
# the call deploy.py makes first.
PROBE = """
import os, socket
from pyinfra import host, inventory
from ollama_deploy.control.tunnel import connections_without_nagle

def nodelay():
    return host.connector.client.get_transport().sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

before = nodelay()
connections_without_nagle(inventory)
with open(os.environ["NODELAY_REPORT"], "a") as report:
    report.write(f"{host.name} {before} {nodelay()}\\n")
"""


def test_tools_connect_without_nagle(testbed):
    tb, _ = testbed
    client = ssh_client(tb.hosts[0].name, str(tb.ssh_config))
    try:
        assert client.get_transport().sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        client.close()


def test_the_deploy_turns_nagle_off_on_every_pyinfra_connection(testbed, tmp_path):
    tb, _ = testbed
    probe, report = tmp_path / "nodelay_probe.py", tmp_path / "report"
    probe.write_text(PROBE)
    run = run_deploy(tb.inventory_path, deploy_file=str(probe), env={"NODELAY_REPORT": str(report)})
    assert run.rc == 0, run.stderr[-2000:]
    after = {name: flag for name, _, flag in (line.split() for line in report.read_text().splitlines())}
    assert after == {h.name: "1" for h in tb.hosts}
