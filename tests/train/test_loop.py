"""The training loop's pieces: disjoint supervision, class weights, best-epoch restore."""

import torch

from graphrec.graph import build_graph, message_graph, split_edges
from graphrec.loaders import extract, make_source
from graphrec.train.batches import disjoint_loader
from graphrec.train.evaluation import validate
from graphrec.train.loop import new_model, train_loop
from graphrec.train.losses import class_weights


def graph_and_split(cfg):
    g = build_graph(extract(make_source(cfg.extract), progress=False), cfg, progress=False)
    s = split_edges(cfg.build.split, g.target_index.shape[1], g.target_index[0], g.time)
    return g, s


def test_disjoint_supervision_edges_are_not_in_the_message_graph(tiny_cfg):
    tiny_cfg.train.disjoint_ratio = 0.25
    g, s = graph_and_split(tiny_cfg)
    loader = disjoint_loader(g, s.train, tiny_cfg, torch.Generator().manual_seed(0))
    data = loader.data
    msg = {tuple(e) for e in data["user", "rates", "movie"].edge_index.t().tolist()}
    sup = {tuple(e) for e in loader.edge_label_index[1].t().tolist()}
    train = {tuple(e) for e in g.target_index[:, s.train].t().tolist()}
    assert not msg & sup
    assert msg | sup == train
    assert len(sup) == round(0.25 * len(s.train))


def test_class_weights_are_inverse_frequency():
    values, weights = class_weights(torch.tensor([1.0, 1.0, 1.0, 5.0]))
    assert values.tolist() == [1.0, 5.0]
    assert torch.allclose(weights, torch.tensor([4 / (2 * 3), 4 / (2 * 1)]))


def test_best_epoch_weights_are_restored(tiny_cfg):
    tiny_cfg.train.epochs = 4
    tiny_cfg.train.patience = 0
    g, s = graph_and_split(tiny_cfg)
    torch.manual_seed(0)
    data = message_graph(g, s.train)
    model = new_model(g, s, tiny_cfg)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert len(result.history) == 4
    best = min(r["val_rmse"] for r in result.history)
    assert result.best_val == best
    assert result.history[result.best_epoch - 1]["val_rmse"] == best
    _, again = validate(model, g, data, s, tiny_cfg)
    assert abs(again - best) < 1e-6


def test_device_auto_and_missing_gpu():
    import pytest

    from graphrec.errors import ConfigError
    from graphrec.train.context import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no GPU is visible"):
            resolve_device("cuda")


def test_same_seed_same_model_and_torch_settings_restored(tiny_cfg):
    """train.deterministic: two runs from one seed end with identical weights, and the
    process's deterministic-algorithms setting is what it was before training."""
    tiny_cfg.train.epochs = 2
    tiny_cfg.train.patience = 0
    g, s = graph_and_split(tiny_cfg)
    before = torch.are_deterministic_algorithms_enabled()
    runs = []
    for _ in range(2):
        tiny_cfg.train.run_id = None  # a new run each time (a run id is never reused)
        torch.manual_seed(0)
        model = new_model(g, s, tiny_cfg)
        train_loop(model, g, s, tiny_cfg, progress=False)
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    assert torch.are_deterministic_algorithms_enabled() == before


def test_deterministic_algorithms_block_sets_and_restores():
    from graphrec.train.loop import deterministic_algorithms

    before = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        # no NaN fill of fresh tensors (a cost, not a result): torch.empty keeps its bytes
        assert not torch.utils.deterministic.fill_uninitialized_memory
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.utils.deterministic.fill_uninitialized_memory == fill
    with deterministic_algorithms(False):
        assert not torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before
