"""Stage 4, the test evaluation and its two protocols (``TEST_INPUTS``): what the model
passes messages over, what is excluded from the ranking, and what the result holds, on a
hand-made graph where the two protocols must disagree."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

import graphrec.recommend.evaluate as evaluate_module
from graphrec.graph import Graph
from graphrec.graph.split import EdgeSplit, random_split
from graphrec.recommend.evaluate import TEST_INPUTS, evaluate_test, known_edges, seen_edges

T = ("user", "rates", "item")
A, B, C = 0, 1, 2  # items
# (user, item, label, part): A has more training edges than B, B more train+val edges than A
EDGES = [
    (0, A, 4.0, "train"),
    (1, A, 5.0, "train"),
    (2, B, 4.5, "train"),
    (3, B, 4.0, "val"),
    (4, B, 5.0, "val"),
    (0, B, 3.0, "val"),
    (5, B, 5.0, "test"),  # user 5's only edge: a positive
    (3, C, 1.0, "test"),  # below evaluate.positive_threshold: not a positive
]


def hand_graph() -> tuple[Graph, EdgeSplit]:
    ei = torch.tensor([[u for u, *_ in EDGES], [i for _, i, *_ in EDGES]])
    label = torch.tensor([lab for *_, lab, _ in EDGES])
    part = [p for *_, p in EDGES]
    idx = lambda name: torch.tensor([e for e, p in enumerate(part) if p == name])  # noqa: E731
    graph = Graph(
        node_ids={"user": pa.array([11, 12, 13, 14, 15, 16]), "item": pa.array([101, 102, 103])},
        x={},
        edge_index={T: ei},
        target=T,
        label=label,
    )
    return graph, EdgeSplit(train=idx("train"), val=idx("val"), test=idx("test"))


class EdgeCounts:
    """A stand-in for a model whose vectors depend on the message graph: an item's score is
    its number of edges in ``data`` (with the popularity baseline's id tie-break), the same
    for every user. It keeps each message graph it was given."""

    device = torch.device("cpu")

    def __init__(self, num_users: int, num_items: int) -> None:
        self.num_users, self.num_items = num_users, num_items
        self.seen: list = []

    def vectors(self, data):
        self.seen.append(data)
        n = self.num_items
        count = torch.bincount(data[T].edge_index[1], minlength=n).double()
        count = count + torch.arange(n, 0, -1, dtype=torch.float64) / (10 * n)
        return torch.ones(self.num_users, 1, dtype=torch.float64), count.unsqueeze(1)


def edge_set(ei: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, ei.t().tolist()))


@pytest.fixture
def cfg(tiny_cfg):
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    tiny_cfg.evaluate.k = 1
    tiny_cfg.evaluate.positive_threshold = 4.0
    return tiny_cfg


def test_seen_and_known_edges_of_a_random_split():
    split = random_split(50, val=0.2, test=0.1, seed=3)
    assert torch.equal(seen_edges(split, "train+val"), torch.cat([split.train, split.val]))
    assert torch.equal(seen_edges(split, "train"), split.train)
    assert not set(seen_edges(split, "train+val").tolist()) & set(split.test.tolist())
    # the ranking excludes train and val whatever the model saw
    assert torch.equal(known_edges(split), torch.cat([split.train, split.val]))
    assert TEST_INPUTS == ("train+val", "train")


@pytest.mark.parametrize("bad", ["val", "train+test", "all", ""])
def test_an_unknown_protocol_is_refused(bad):
    split = random_split(10, 0.2, 0.2, 0)
    with pytest.raises(ValueError, match="test inputs"):
        seen_edges(split, bad)


@pytest.mark.parametrize("inputs", TEST_INPUTS)
def test_result_holds_the_protocol_the_baseline_and_the_positives(cfg, inputs):
    graph, split = hand_graph()
    out = evaluate_test(EdgeCounts(6, 3), graph, split, cfg, inputs)
    assert out["test_inputs"] == inputs
    assert out["rmse"] is None  # link objective: no rating to score
    assert out["test_positives"] == 1 and out["users"] == 1
    assert set(out["baseline_popularity"]) == {"recall@1", "ndcg@1", "hit@1", "coverage@1"}
    # popularity over training edges ranks A first for user 5: a miss in either protocol
    assert out["baseline_popularity"]["recall@1"] == 0.0
    cfg.evaluate.positive_threshold = 0.5  # every test edge is a positive
    assert evaluate_test(EdgeCounts(6, 3), graph, split, cfg, inputs)["test_positives"] == 2


def test_the_model_passes_messages_over_the_protocols_edges(cfg):
    graph, split = hand_graph()
    ei = graph.target_index
    for inputs, edges in (
        ("train", split.train),
        ("train+val", torch.cat([split.train, split.val])),
    ):
        model = EdgeCounts(6, 3)
        evaluate_test(model, graph, split, cfg, inputs)
        (data,) = model.seen
        assert edge_set(data[T].edge_index) == edge_set(ei[:, edges])
        assert edge_set(data["item", "rev_rates", "user"].edge_index) == edge_set(
            ei[:, edges].flip(0)
        )


def test_the_two_protocols_differ_for_a_model_that_reads_its_graph(cfg, monkeypatch):
    """Over train edges A is the most connected item, over train+val B: user 5's held-out
    B is found only with the validation edges as input. The excluded items are the same."""
    graph, split = hand_graph()
    excluded = []
    real = evaluate_module.evaluate_ranking

    def spy(uv, iv, exclude, *args):
        excluded.append(exclude)
        return real(uv, iv, exclude, *args)

    monkeypatch.setattr(evaluate_module, "evaluate_ranking", spy)
    strict = evaluate_test(EdgeCounts(6, 3), graph, split, cfg, "train")
    full = evaluate_test(EdgeCounts(6, 3), graph, split, cfg, "train+val")
    assert strict["recall@1"] == 0.0 and full["recall@1"] == 1.0
    assert strict["ndcg@1"] == 0.0 and full["ndcg@1"] == 1.0
    # the stand-in over training edges is the popularity baseline itself
    assert {k: strict[k] for k in strict["baseline_popularity"]} == strict["baseline_popularity"]
    assert strict["baseline_popularity"] == full["baseline_popularity"]
    # model and baseline, in both protocols: one exclusion list, train + val
    assert len(excluded) == 4
    for indptr, indices in excluded:
        assert torch.equal(indptr, excluded[0][0]) and torch.equal(indices, excluded[0][1])
    indptr, indices = excluded[0]
    got = {(u, int(i)) for u in range(6) for i in indices[indptr[u] : indptr[u + 1]]}
    known = known_edges(split)
    assert got == edge_set(graph.target_index[:, known])
    assert (5, B) not in got and (3, C) not in got  # test edges stay rankable


class ConstantRating(EdgeCounts):
    """A stand-in rating model: predicts 3.0 for every pair it is asked about."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.pairs = None
        self.training = True

    def eval(self):
        self.training = False

    def encode(self, data):
        return {}

    def score(self, data, z, pairs):
        self.pairs = pairs
        return torch.full((pairs.shape[1],), 3.0)


def test_rating_objective_scores_the_test_edges(cfg):
    graph, split = hand_graph()
    cfg.train.objective, cfg.train.loss = "rating", "mse"
    model = ConstantRating(6, 3)
    out = evaluate_test(model, graph, split, cfg)
    assert out["test_inputs"] == "train+val"  # the default protocol
    assert model.training is False
    assert edge_set(model.pairs) == {(5, B), (3, C)}
    assert out["rmse"] == pytest.approx(((5.0 - 3.0) ** 2 / 2 + (1.0 - 3.0) ** 2 / 2) ** 0.5)
