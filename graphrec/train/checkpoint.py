"""Stage 3, train: what a training checkpoint holds and how it is written (the context
decides where it is stored: a folder, object storage, or Ray Train)."""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.config import JobConfig, to_dict
from graphrec.graph.hetero import Graph
from graphrec.train.context import TrainContext


def ctx_states(ctx: TrainContext, state: Tensor) -> list[Tensor]:
    """Every worker's RNG state (rank order), so a restored run continues each stream."""
    if ctx.world_size == 1:
        return [state]
    gathered = ctx.all_gather([float(b) for b in state.tolist()])
    return [torch.tensor([int(v) for v in g], dtype=torch.uint8) for g in gathered]


def save_train_state(folder, state: dict, graph: Graph, cfg: JobConfig) -> None:
    """A checkpoint folder: ``train_state.pt`` (model, best model, optimizer, RNG, epoch,
    history, config) and ``id_map/<type>.parquet`` (position -> original id)."""
    graph.write_id_maps(folder)
    torch.save({**state, "config": to_dict(cfg)}, folder / "train_state.pt")
