"""Stage 4, test evaluation: the trained model ranks every unseen item for each user with a
held-out test positive, beside the popularity baseline on the same split.

Two test protocols differ only in what the model sees when it scores test (``TEST_INPUTS``):

``train+val`` (the job's default, ``graphrec run``)
    messages pass over train and validation edges: everything known before the test edges,
    as the model would be used after training.
``train`` (``graphrec compare``)
    messages pass over training edges only: the same input every baseline is fit on, so
    methods are compared on equal terms (the stricter choice).

In both, train and validation edges are excluded from the ranking, and the positives are the
test edges with ``label >= evaluate.positive_threshold`` (all test edges without a label).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from graphrec.config import JobConfig
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.registry import RecommenderModel
from graphrec.ranking.metrics import evaluate_ranking, popularity_vectors, positives, rmse

TestInputs = Literal["train+val", "train"]
TEST_INPUTS: tuple[TestInputs, ...] = ("train+val", "train")


def seen_edges(split: EdgeSplit, inputs: TestInputs) -> Tensor:
    """The target edges a model passes messages over when it scores test."""
    if inputs == "train+val":
        return torch.cat([split.train, split.val])
    if inputs == "train":
        return split.train
    raise ValueError(f"test inputs {inputs!r}: one of {TEST_INPUTS}")


def known_edges(split: EdgeSplit) -> Tensor:
    """The target edges excluded from the test ranking (either protocol): train and val."""
    return torch.cat([split.train, split.val])


def evaluate_test(
    model: RecommenderModel,
    graph: Graph,
    split: EdgeSplit,
    cfg: JobConfig,
    inputs: TestInputs = "train+val",
) -> dict:
    """Test metrics of the model and of the popularity baseline, on the same split."""
    ei = graph.target_index
    data = message_graph(graph, seen_edges(split, inputs), cfg.build.reverse_edges)
    data = data.to(model.device)
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    k, batch = cfg.evaluate.k, cfg.evaluate.batch_users
    known = known_edges(split)
    own = torch.arange(n_users) if graph.same_type else None  # friends: not oneself
    exclude = to_csr(ei[0, known], ei[1, known], n_users, own)
    pos = positives(graph, split.test, cfg.evaluate.positive_threshold)
    out: dict = {"rmse": None, "test_inputs": inputs}
    if cfg.train.objective == "rating":
        model.eval()
        with torch.no_grad():
            z = model.encode(data)
            pred = model.score(data, z, ei[:, split.test].to(model.device))
        out["rmse"] = rmse(pred.cpu(), graph.label[split.test])
    uv, iv = model.vectors(data)
    out.update(evaluate_ranking(uv, iv, exclude, ei[0, pos], ei[1, pos], k, batch))
    pu, pi = popularity_vectors(ei[1, split.train], n_users, n_items)
    base = evaluate_ranking(pu, pi, exclude, ei[0, pos], ei[1, pos], k, batch)
    out["baseline_popularity"] = {key: v for key, v in base.items() if key != "users"}
    out["test_positives"] = int(len(pos))
    return out
