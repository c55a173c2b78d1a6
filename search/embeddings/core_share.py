"""How many torch threads a batch of image embedding should use: all it was given, less the cores other processes
are busy on right now.

torch splits every operator across its threads and waits for the slowest, so one thread pre-empted by another
process (the web process reading an upload, an import decoding pictures) stalls the whole team. Measured on the
2-core Xeon with AMX, ViT-B/32 in bf16: two threads encode 96 images/s alone, one thread 75; but while a folder
import ran beside the worker, one thread made 600 pictures searchable in 12.0 s and two in 14.2 s. So before each
batch the worker looks at the CPU time the machine spent outside its own process since the previous batch
(``/proc/stat`` less its own ``os.times()``) and leaves those cores alone; alone on the machine it uses them all
(the same import: 10.6 s).
Where ``/proc/stat`` cannot be read (not Linux) nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from time import monotonic

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MIN_INTERVAL_SECONDS = 0.05  # shorter windows than this say more about the scheduler than about the load
_IDLE_COLUMNS = (3, 4)  # idle, iowait in the "cpu" line of /proc/stat


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all cores), or None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(value for column, value in enumerate(ticks) if column not in _IDLE_COLUMNS) / CLOCK_TICKS


def own_busy_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


@dataclass
class CoreShare:
    """Tracks the cores other processes use, between calls of ``threads``; one per batch-embedding loop."""

    given: int
    _last: tuple[float, float, float] | None = field(default=None, repr=False)
    _decided: int = field(default=0, repr=False)

    def threads(self) -> int:
        """Threads for the next batch: ``given`` less the cores other processes kept busy since the last measured
        call (rounded), at least one. Until something has been measured, ``given``."""
        machine = machine_busy_seconds()
        if machine is None or self.given <= 1:
            return self.given
        now = (monotonic(), machine, own_busy_seconds())
        if self._last is None:
            self._last, self._decided = now, self.given
        elif now[0] - self._last[0] >= MIN_INTERVAL_SECONDS:
            others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / (now[0] - self._last[0])
            self._last, self._decided = now, max(1, min(self.given, round(self.given - others)))
        return self._decided
