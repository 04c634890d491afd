"""The graph goes into the object store once; workers map it without copying."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from graphrec.distributed.shared import from_arrays, put_inputs
from tests.train.test_checkpoint import inputs_of

pytestmark = pytest.mark.ray


@ray.remote
def _inspect(shared):
    inputs = shared()
    data = inputs.data
    et = ("user", "rates", "movie")
    ei = data[et].edge_index
    arr = ray.get(shared.ref)["message_edges"][et]
    return {
        "edges": ei.tolist(),
        "x": inputs.graph.x["movie"].tolist(),
        "train": inputs.split.train.tolist(),
        "writeable": bool(arr.flags.writeable),
        "pid": __import__("os").getpid(),
    }


def test_workers_map_the_graph_zero_copy(tiny_cfg, ray_cluster):
    inputs = inputs_of(tiny_cfg)
    shared = put_inputs(inputs)
    arrays = ray.get(shared.ref)
    back = from_arrays(arrays)
    et = ("user", "rates", "movie")
    # the tensors are views of the object store's buffers, not copies
    assert back.data[et].edge_index.data_ptr() == arrays["message_edges"][et].ctypes.data
    assert not arrays["message_edges"][et].flags.writeable
    assert torch.equal(back.data[et].edge_index, inputs.data[et].edge_index)
    # the kept edges' labels travel with them (a loader supervises with them)
    assert torch.equal(back.data[et].label, inputs.data[et].label)
    assert torch.equal(back.graph.x["movie"], inputs.graph.x["movie"])
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(back.split, name), getattr(inputs.split, name))

    seen = ray.get(_inspect.remote(shared))  # another process
    assert seen["pid"] != __import__("os").getpid()
    assert not seen["writeable"]
    assert seen["edges"] == inputs.data[et].edge_index.tolist()
    assert np.allclose(seen["x"], inputs.graph.x["movie"].numpy())
    assert seen["train"] == inputs.split.train.tolist()
