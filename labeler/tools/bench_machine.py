"""What the rest of the machine did while a bench phase measured: the cores used by
every process but the phase's own (the broker, mostly), between the phase's first
message and its last.

A phase's rate is read against the cores it had. ``MachineSampler`` runs in the
bench's parent while a phase's children run: every ``every`` seconds (0.05) it reads the
machine's busy time (``/proc/stat``: user, nice, system, irq and softirq of all
cores; not idle, iowait or the hypervisor's steal) and the children's own CPU
(``/proc/<pid>/stat``: every thread, user and system). ``others(first, last)``
interpolates both at the phase's first and last message (monotonic times, one clock
for every process of the machine) and divides what the rest used by the span.
Linux only; elsewhere, and for a span the samples do not cover, it says nothing
(``None``).
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIN_SPAN_S = 1.0  # shorter phases get no figure: at 0.05 s a sample, 0.1 core of error


def busy_seconds(stat_line: str) -> float:
    """The busy CPU seconds of ``/proc/stat``'s first (``cpu``) line."""
    fields = stat_line.split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / TICK


def machine_busy_s() -> float | None:
    """CPU seconds every process of the machine has spent so far; ``None`` without
    ``/proc/stat``."""
    try:
        with open("/proc/stat") as stat:
            return busy_seconds(stat.readline())
    except OSError:
        return None


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds process ``pid`` has spent so far (every thread); ``None`` once it is
    gone (or without ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # the command name, in parentheses, may hold spaces: fields count from after it
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class MachineSampler(threading.Thread):
    """Samples the machine's busy time and the CPU of ``pids`` (see the module
    docstring) until ``stop()``."""

    def __init__(self, pids: Sequence[int], every: float = 0.05) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.pids = list(pids)
        self.every = every
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, busy, own)
        self._last_own = dict.fromkeys(self.pids, 0.0)
        self._stop_event = threading.Event()

    def sample(self) -> None:
        busy = machine_busy_s()
        if busy is None:
            return
        for pid in self.pids:  # a child that exited keeps its last reading
            cpu = process_cpu_s(pid)
            if cpu is not None:
                self._last_own[pid] = cpu
        self.samples.append((time.monotonic(), busy, sum(self._last_own.values())))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        """Stop sampling, with one last sample: a phase's last message can come after the
        last periodic one (its child's final CPU reading is at most ``every`` old)."""
        self._stop_event.set()
        self.join(timeout=5)
        self.sample()

    def others(self, first: float | None, last: float | None) -> float | None:
        """Cores the rest of the machine used on average from ``first`` to ``last``."""
        return others_between(self.samples, first, last)


def others_between(samples: Sequence[tuple[float, float, float]], first: float | None,
                   last: float | None) -> float | None:
    """From ``(time, machine busy, own CPU)`` samples in time order: the cores the rest
    used on average from ``first`` to ``last`` (both inside the samples, at least
    ``MIN_SPAN_S`` apart: each end can misplace up to a sampling interval's CPU)."""
    if first is None or last is None or last - first < MIN_SPAN_S or len(samples) < 2:
        return None
    if first < samples[0][0] or last > samples[-1][0]:
        return None

    def at(t: float) -> tuple[float, float]:
        i = max(1, bisect_left([s[0] for s in samples], t))
        (t0, b0, o0), (t1, b1, o1) = samples[i - 1], samples[i]
        w = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        return b0 + w * (b1 - b0), o0 + w * (o1 - o0)

    (busy0, own0), (busy1, own1) = at(first), at(last)
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / (last - first)
