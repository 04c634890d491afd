"""Extraction on a Ray cluster: one Ray task per partition, the partitions dealt
round-robin to the nodes that have CPUs (a soft node affinity: a busy or lost node's share
goes elsewhere; Ray's ``SPREAD`` left every partition of a small job on one node), each
opening its own connection to the source and returning
the partition's Arrow record batches through Ray's object store; the driver only checks
and joins them. ``graphrec run --workers N`` reads this way, so a cluster's nodes share
the reading instead of the driver doing it alone.

Every node must reach the source: a database's address, or for files a path or URI that
each node can read (shared storage or object storage), as for any Ray job.
"""

from __future__ import annotations

import pyarrow as pa
import ray

from graphrec.config import ExtractConfig, JobConfig
from graphrec.distributed.trainer import init_ray
from graphrec.errors import GraphRecError
from graphrec.loaders import GraphSource, Partition, make_source


@ray.remote(num_cpus=1, max_retries=2)
def _read_partition(cfg: ExtractConfig, part: Partition) -> tuple[list[pa.RecordBatch], str]:
    source = make_source(cfg)
    try:
        return list(source.read(part)), ray.get_runtime_context().get_node_id()
    finally:
        source.close()


class RayReadParts:
    """``read_parts`` for :func:`graphrec.loaders.extract` (one task per partition).
    ``nodes``: the Ray node id that read each partition, in order (for the record)."""

    name = "ray tasks"

    def __init__(self, resources: dict[str, float] | None = None) -> None:
        self.resources = resources or {}
        self.nodes: list[str] = []

    def __call__(self, source: GraphSource, parts: list[Partition]) -> list[list[pa.RecordBatch]]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = sorted(
            n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1
        )
        refs = []
        for i, part in enumerate(parts):
            where = (
                NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True)
                if nodes
                else "SPREAD"
            )
            task = _read_partition.options(scheduling_strategy=where, resources=self.resources)
            refs.append(task.remote(source.cfg, part))
        out = []
        try:
            for ref in refs:
                batches, node = ray.get(ref)
                out.append(batches)
                self.nodes.append(node)
        except BaseException as exc:  # a bad partition, an interrupt: stop the others
            for ref in refs:
                ray.cancel(ref)
            cause = getattr(exc, "cause", None)
            if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, GraphRecError):
                raise type(cause)(str(cause)) from None  # the partition's own one line
            raise
        return out


def ray_read_parts(cfg: JobConfig, progress: bool = True) -> RayReadParts:
    """Join (or start) the job's Ray cluster and read through it."""
    init_ray(cfg.distributed.address, quiet=not progress)
    return RayReadParts()
