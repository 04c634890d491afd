"""Peak resident memory per stage, sampled by a background thread.

``ru_maxrss`` only ever grows over a process's life, so it cannot give a later stage's peak;
:class:`RssSampler` polls the current RSS every few milliseconds and keeps the maximum
since the last :meth:`RssSampler.reset`.
"""

from __future__ import annotations

import threading

import psutil


class RssSampler:
    """``with RssSampler() as rss: ...; rss.reset(); <stage>; rss.peak_mb``."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self._proc = psutil.Process()
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def reset(self) -> float:
        """Start a new stage; returns the current RSS in MiB (the stage's baseline)."""
        self._peak = self._proc.memory_info().rss
        return self._peak / 2**20

    @property
    def peak_mb(self) -> float:
        """Peak RSS in MiB since the last reset."""
        return max(self._peak, self._proc.memory_info().rss) / 2**20
