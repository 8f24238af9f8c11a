"""The host's CPU, memory and NVIDIA GPUs as one pyinfra fact (parsed by ollama_deploy.lib.hardware).

Example:
    hw = host.get_fact(HardwareFact)    # Hardware(arch='x86_64', threads=24, gpus=(...), ...)
"""
from __future__ import annotations

from pyinfra.api import FactBase, FactProcessError

from ollama_deploy.lib.hardware import GPU_QUERY, Hardware, ParseError, parse_hardware


class HardwareFact(FactBase[Hardware]):
    """CPU, memory and NVIDIA GPUs of a Linux host, in one command.

    Physical cores come from the sysfs thread sibling lists (one distinct list per core); lscpu's
    CORE column is numbered per CPU type and undercounts hybrid ARM chips such as the GB10.
    """

    def command(self):
        return (
            "echo '@@ uname'; uname -m; "
            "echo '@@ lscpu'; lscpu -p=CPU,CORE,SOCKET 2>/dev/null || "
            "awk '/^processor/{print $3\",\"$3\",0\"}' /proc/cpuinfo; "
            "echo '@@ thread_siblings'; "
            "cat /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list 2>/dev/null; "
            "echo '@@ cpuinfo'; grep -m2 -E '^(model name|flags|Features)' /proc/cpuinfo; "
            "echo '@@ meminfo'; grep -E '^(MemTotal|SwapTotal):' /proc/meminfo; "
            "echo '@@ nvidia-smi'; if command -v nvidia-smi >/dev/null 2>&1; then "
            f"nvidia-smi --query-gpu={GPU_QUERY} --format=csv,noheader,nounits 2>&1; echo \"rc=$?\"; "
            "else echo absent; fi"
        )

    def process(self, output):
        try:
            return parse_hardware(output)
        except (ParseError, ValueError) as e:
            raise FactProcessError(f"cannot read host hardware: {e}") from e
