"""CPU seconds per command name while a benchmark step runs, read from /proc by a sampling thread:
which program the machine's CPU went to (on the testbed, every host's processes are the machine's).
A process counts from its CPU at the start of the span, or from 0 when born in it, to its last
sample; what exits between samples after its last one, and what lives shorter than the interval,
is not counted (the caller compares the sum with the machine's busy time).

Example:
    with ProcessCpu() as cpu:
        run_deploy(...)
    cpu.by_command.most_common(3)      # [("llama-server", 17.4), ("ollama", 2.5), ("python", 2.5)]
"""
from __future__ import annotations

import collections
import os
import threading

TICK = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[tuple[str, str], tuple[str, float]]:
    """(pid, start time) -> (command name, CPU seconds so far) for every process now."""
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        # proc(5): utime and stime are fields 14 and 15, starttime 22 (rest starts at field 3)
        seen[(pid, rest[19])] = (name, (int(rest[11]) + int(rest[12])) / TICK)
    return seen


class ProcessCpu:
    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.by_command: collections.Counter[str] = collections.Counter()
        self._last: dict = {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._last.update(snapshot())

    def __enter__(self) -> ProcessCpu:
        self._start = {key: cpu for key, (_, cpu) in snapshot().items()}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(snapshot())
        for key, (name, cpu) in self._last.items():
            self.by_command[name] += max(0.0, cpu - self._start.get(key, 0.0))
