"""The closed-form models (EASE, GF-CF): their fits against the formulas computed by hand
on the tiny graph, the training stage's choice of their setting on validation, their
memory refusals, and users scored from a history they did not have at fit time."""

from __future__ import annotations

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.graph.hetero import message_graph
from graphrec.models import MODELS, check_model
from graphrec.models import closed_form as cf
from graphrec.train.loop import new_model, train_loop
from tests.train.test_loop import graph_and_split


def setup(cfg, name: str, **model_settings):
    cfg.model.name = name
    cfg.train.objective, cfg.train.loss = "link", "bpr"
    for key, value in model_settings.items():
        setattr(getattr(cfg.model, name), key, value)
    check_model(cfg)
    g, s = graph_and_split(cfg)
    return g, s, new_model(g, s, cfg)


def dense_history(g, edges) -> torch.Tensor:
    x = torch.zeros(g.num_nodes["user"], g.num_nodes["movie"], dtype=torch.float64)
    x[g.target_index[0, edges], g.target_index[1, edges]] = 1.0
    return x


@pytest.mark.parametrize("name", ["ease", "gfcf"])
def test_registered_from_their_own_files_as_closed_form(name):
    spec = MODELS[name]
    assert spec.batches == "closed_form" and spec.build.__module__ == f"graphrec.models.{name}"


def test_ease_fit_is_the_closed_form_by_hand(tiny_cfg):
    g, s, model = setup(tiny_cfg, "ease", lam=3.0)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert [r["lam"] for r in result.history] == [3.0]  # a fixed lam: one fit, no search
    x = dense_history(g, s.train)
    p = torch.linalg.inv(x.t() @ x + 3.0 * torch.eye(x.shape[1], dtype=torch.float64))
    b = torch.eye(x.shape[1], dtype=torch.float64) - p / p.diagonal().unsqueeze(0)
    b.fill_diagonal_(0.0)
    assert torch.allclose(model.b.double(), b, atol=1e-4)
    uv, iv = model.vectors(message_graph(g, s.train))
    assert torch.allclose((uv @ iv.t()).double(), x @ b, atol=1e-4)


def test_gfcf_filters_are_the_formulas_by_hand(tiny_cfg):
    g, s, model = setup(tiny_cfg, "gfcf", alpha=0.5, rank=3, linear=True)
    train_loop(model, g, s, tiny_cfg, progress=False)
    r = dense_history(g, s.train)
    d_u, d_i = r.sum(1), r.sum(0)
    inv = lambda d: torch.where(d > 0, d.clamp(min=1e-12).rsqrt(), torch.zeros_like(d))  # noqa: E731
    norm = inv(d_u).unsqueeze(1) * r * inv(d_i).unsqueeze(0)
    _, _, vh = torch.linalg.svd(norm)
    v = vh[:3].t()
    ideal = (r * inv(d_i)) @ v @ (v.t() * d_i.sqrt())
    expected = r @ norm.t() @ norm + 0.5 * ideal
    uv, iv = model.vectors(message_graph(g, s.train))
    assert torch.allclose((uv @ iv.t()).double(), expected, atol=1e-3)


def test_gfcf_without_the_linear_filter_is_the_low_rank_filter_alone(tiny_cfg):
    g, s, model = setup(tiny_cfg, "gfcf", rank=4, linear=False)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert [r["alpha"] for r in result.history] == [1.0]  # nothing to choose
    uv, iv = model.vectors(message_graph(g, s.train))
    assert uv.shape == (12, 4) and iv.shape == (20, 4)


@pytest.mark.parametrize("name,setting", [("ease", "lam"), ("gfcf", "alpha")])
def test_the_setting_is_chosen_on_validation_and_its_fit_kept(tiny_cfg, name, setting):
    g, s, model = setup(tiny_cfg, name)
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    rows = result.history
    assert len(rows) >= 2 and result.val_metric == "val_ndcg@20"
    best = max(rows, key=lambda r: r["val_ndcg@20"])
    assert result.best_epoch == best["epoch"] and result.best_val == best["val_ndcg@20"]
    assert result.stats["chosen"] == {setting: best[setting]}
    # the model holds the chosen value's fit: validation now gives the chosen row's value
    from graphrec.train.evaluation import validate

    _, again = validate(model, g, message_graph(g, s.train), s, tiny_cfg)
    assert again == pytest.approx(best["val_ndcg@20"])


def test_a_user_unseen_at_fit_time_is_scored_from_its_history(tiny_cfg):
    g, s, model = setup(tiny_cfg, "ease", lam=1.0)
    ei = g.target_index
    user = 0
    keep = s.train[ei[0, s.train] != user]  # the user has no training edge at fit time
    train_loop(model, g, type(s)(keep, s.val, s.test), tiny_cfg, progress=False)
    uv, iv = model.vectors(message_graph(g, s.train))  # now the user's history is known
    scores = uv[user] @ iv.t()
    x = dense_history(g, s.train)[user].float()
    assert scores.abs().sum() > 0
    assert torch.allclose(scores, x @ model.b, atol=1e-5)


def test_ease_refuses_a_catalogue_too_large_for_memory(tiny_cfg, monkeypatch):
    class Small:
        total = 2 * 3 * 4 * 20 * 20  # half of it holds 3 float32 20 x 20 matrices, not 4

    monkeypatch.setattr(cf.psutil, "virtual_memory", lambda: Small)
    with pytest.raises(ConfigError, match=r"model.name=ease: 20 items need 4 dense 20 x 20"):
        setup(tiny_cfg, "ease")


def test_gfcf_drops_the_linear_filter_where_it_does_not_fit(tiny_cfg, monkeypatch):
    class Small:
        total = 4 * 2 * 4 * 20 * 20  # a quarter of it holds two 20 x 20 matrices, not 3

    monkeypatch.setattr(cf.psutil, "virtual_memory", lambda: Small)
    _, _, model = setup(tiny_cfg, "gfcf")
    assert model.linear is False
    with pytest.raises(ConfigError, match="model.gfcf.linear=true: 20 items need 3 dense"):
        setup(tiny_cfg, "gfcf", linear=True)


@pytest.mark.parametrize("name", ["ease", "gfcf"])
def test_closed_form_models_refuse_workers_and_rating_objective(tiny_cfg, name):
    tiny_cfg.model.name = name
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    tiny_cfg.distributed.workers = 2
    with pytest.raises(ConfigError, match="fit in closed form in one process"):
        check_model(tiny_cfg)
    tiny_cfg.distributed.workers = 0
    tiny_cfg.train.objective = "rating"
    with pytest.raises(ConfigError, match="ranks items"):
        check_model(tiny_cfg)


def test_ease_with_too_little_regularisation_is_one_config_error(tiny_cfg):
    # 12 users, 20 items: X^T X is singular; lam=1e-9 does not make it positive definite
    g, s, model = setup(tiny_cfg, "ease", lam=1e-9)
    with pytest.raises(ConfigError, match=r"model.ease.lam=1e-09: X\^T X \+ lam I is not positive"):
        train_loop(model, g, s, tiny_cfg, progress=False)


def test_final_mode_fits_the_start_value_and_says_so(tiny_cfg, capsys):
    from graphrec.graph.split import all_train

    g, s, model = setup(tiny_cfg, "gfcf")
    result = train_loop(model, g, all_train(len(s.train) + len(s.val) + len(s.test)), tiny_cfg,
                        progress=False)  # fmt: skip
    assert [r["alpha"] for r in result.history] == [0.3] and result.best_val is None
    err = capsys.readouterr().err
    assert "model.gfcf.alpha=auto has no validation split" in err and "alpha=0.3" in err


def test_no_validation_positive_means_one_fit_a_warning_and_null_metrics(tiny_cfg, capsys):
    tiny_cfg.evaluate.positive_threshold = 99.0  # no edge is a positive
    g, s, model = setup(tiny_cfg, "ease")
    result = train_loop(model, g, s, tiny_cfg, progress=False)
    assert len(result.history) == 1 and result.best_val is None
    assert result.history[0]["val_ndcg@20"] is None  # null, never NaN
    assert "cannot be computed" in capsys.readouterr().err


def test_closed_form_models_refuse_resume(tiny_cfg):
    tiny_cfg.model.name = "ease"
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    tiny_cfg.train.resume, tiny_cfg.train.run_id = True, "x"
    with pytest.raises(ConfigError, match="keeps no checkpoints: nothing to resume"):
        check_model(tiny_cfg)
