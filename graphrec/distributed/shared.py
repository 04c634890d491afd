"""The training inputs in Ray's object store, mapped zero-copy by every worker on a node.

:func:`put_inputs` stores the graph (features, edges, labels, split and the CSC-ordered
training message graph) once, as NumPy arrays; :class:`SharedInputs` is the small handle a
worker receives, and calling it maps the arrays back as tensors without copying them (Ray
returns NumPy arrays that point into the node's shared-memory object store). Workers on the
same node therefore share one copy of the topology and the features; what each worker
allocates itself is its model, its sampler's small per-node buffers and its batches.

The mapped arrays are read-only: nothing in training writes to the graph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import ray
import torch
from torch_geometric.data import HeteroData

from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.train.batches import TrainInputs


def to_arrays(inputs: TrainInputs) -> dict:
    """``inputs`` as plain data whose bulk is NumPy arrays (Ray stores those zero-copy)."""
    g, s, d = inputs.graph, inputs.split, inputs.data
    return {
        "node_ids": g.node_ids,
        "x": {t: v.numpy() for t, v in g.x.items()},
        "edge_index": {e: v.numpy() for e, v in g.edge_index.items()},
        "target": g.target,
        "label": None if g.label is None else g.label.numpy(),
        "time": None if g.time is None else g.time.numpy(),
        "stats": g.stats,
        "undirected": g.undirected,
        "split": {k: getattr(s, k).numpy() for k in ("train", "val", "test")},
        "message_edges": {e: d[e].edge_index.numpy() for e in d.edge_types},
        # the kept target edges' labels, in the message graph's order (what a loader over
        # the message graph's own edges supervises with)
        "message_labels": {e: d[e].label.numpy() for e in d.edge_types if "label" in d[e]},
    }


def from_arrays(a: dict) -> TrainInputs:
    """The inverse of :func:`to_arrays`, sharing memory with the arrays."""

    def t(arr: np.ndarray | None) -> torch.Tensor | None:
        if arr is None:
            return None
        with warnings.catch_warnings():  # "non-writable array": read-only by design
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr)

    graph = Graph(
        node_ids=a["node_ids"],
        x={k: t(v) for k, v in a["x"].items()},
        edge_index={k: t(v) for k, v in a["edge_index"].items()},
        target=tuple(a["target"]),
        label=t(a["label"]),
        time=t(a["time"]),
        stats=a["stats"],
        undirected=a["undirected"],
    )
    split = EdgeSplit(**{k: t(v) for k, v in a["split"].items()})
    data = HeteroData()
    for ntype, n in graph.num_nodes.items():
        data[ntype].num_nodes = n
        if ntype in graph.x:
            data[ntype].x = graph.x[ntype]
    for etype, ei in a["message_edges"].items():
        data[etype].edge_index = t(ei)
    for etype, label in a["message_labels"].items():
        data[etype].label = t(label)
    return TrainInputs(graph, split, data)


@dataclass
class SharedInputs:
    """A handle to training inputs in the object store; call it in a worker to map them."""

    ref: ray.ObjectRef

    def __call__(self) -> TrainInputs:
        return from_arrays(ray.get(self.ref))


def put_inputs(inputs: TrainInputs) -> SharedInputs:
    """Store ``inputs`` in the object store once (driver side)."""
    return SharedInputs(ray.put(to_arrays(inputs)))
