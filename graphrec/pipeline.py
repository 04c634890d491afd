"""The first two stages as one call, and the one stage timer every entry point uses.

:func:`extract_and_build` is extract -> graph -> split (with structural features from the
training edges only); ``graphrec run``, ``graphrec compare``, Ray Tune and the benchmarks
all start with it. :class:`StageClock` records each stage's seconds and peak memory.

Peak memory: ``ru_maxrss`` only ever grows over a process's life, so it cannot give a later
stage's own peak; with an :class:`RssSampler` (a thread that polls the current RSS every
few milliseconds and keeps the maximum since the last reset) the clock records each stage's
peak and its growth over the stage's start.
"""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pyarrow as pa

from graphrec.config import JobConfig
from graphrec.errors import Interrupted
from graphrec.graph import EdgeSplit, Graph, all_train, build_graph, split_target
from graphrec.graph.structural import add_structural
from graphrec.loaders import GraphTables, extract_cached, make_source


class StageClock:
    """Seconds and peak resident memory per stage: ``with clock.stage(name) as rec: ...``.

    ``rec`` is the stage's record (a dict the stage may add figures to; a ``seconds`` it
    sets itself is kept, e.g. one that leaves out set-up). Without ``rss`` the peak is the
    process's so far (``ru_maxrss``); with it, the stage's own peak and ``rss_growth_mb``.
    ``log`` is called with one line per finished stage.
    """

    def __init__(
        self, rss: RssSampler | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        self.stages: dict[str, dict] = {}
        self.rss = rss
        self.log = log

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        base = self.rss.reset() if self.rss else None
        t0 = time.perf_counter()
        rec = self.stages.setdefault(name, {})
        try:
            yield rec
        except Interrupted as exc:
            exc.stage = exc.stage or name
            raise
        rec.setdefault("seconds", time.perf_counter() - t0)
        if self.rss is not None:
            rec["peak_rss_mb"] = self.rss.peak_mb
            rec["rss_growth_mb"] = rec["peak_rss_mb"] - base
        else:  # ru_maxrss: KiB on Linux
            rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.log is not None:
            shown = {k: _short(v) for k, v in rec.items() if not isinstance(v, dict)}
            self.log(f"  {name}: {shown}")

    @property
    def seconds(self) -> dict[str, float]:
        return {name: s["seconds"] for name, s in self.stages.items() if "seconds" in s}


def extract_and_build(
    cfg: JobConfig, clock: StageClock | None = None, progress: bool = True, read_parts=None
) -> tuple[Graph, EdgeSplit]:
    """Stages 1 and 2: the graph as tensors, and its split (all edges train in final mode).
    ``read_parts``: who reads the source's partitions (see ``loaders.extract``)."""
    clock = clock or StageClock()
    tables = extract_tables(cfg, clock, progress, read_parts)
    with clock.stage("build") as st:
        graph = build_graph(tables, cfg, progress)
        del tables
        # Arrow's allocator (jemalloc) keeps the freed tables' pages: 876 MiB of a 2.1 GiB
        # RSS after building a 1e7-edge graph, about 9 GiB at 1e8; give them back
        pa.default_memory_pool().release_unused()
        n_target = graph.target_index.shape[1]
        if cfg.mode == "final":
            split = all_train(n_target)
        else:
            split = split_target(cfg.build.split, graph)
        add_structural(graph, split, cfg.build, cfg.extract, cfg.mode != "final")
        st.update(graph.stats)
        st.update(
            train_edges=len(split.train), val_edges=len(split.val), test_edges=len(split.test)
        )
    return graph, split


def extract_tables(
    cfg: JobConfig, clock: StageClock, progress: bool = True, read_parts=None
) -> GraphTables:
    """Stage 1: the configured source's nodes and edges as Arrow tables (or its snapshot)."""
    target = cfg.build.target
    with clock.stage("extract") as st:
        required = {target: [cfg.build.label]} if cfg.build.label else {}
        source = make_source(cfg.extract)
        try:
            tables, cached = extract_cached(source, required, progress, read_parts)
        finally:
            source.close()
        st.update(edges=tables.num_edges, from_snapshot=cached)
        if read_parts is not None and not cached:
            st["read_by"] = getattr(read_parts, "name", "custom")
            if getattr(read_parts, "nodes", None):
                st["read_on_nodes"] = len(set(read_parts.nodes))
        if not cached:
            st["edges_per_s"] = tables.stats["edges_per_s"]
    return tables


def _short(v):
    if isinstance(v, float):
        return round(v, 3) if abs(v) < 1000 else round(v)
    return v


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
