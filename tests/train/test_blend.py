"""The blend of a trained ranker with a closed-form partner (``model.blend``): its scores
against the formula by hand, the weight chosen on validation (and the fast search agreeing
with the training stage's own validation), a fixed weight, the partner chosen by size, and
``mode: final`` choosing on an inner validation split before refitting on every edge."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.graph.hetero import message_graph
from graphrec.job import run_job
from graphrec.models import check_model
from graphrec.models.blend import BlendedModel, mix, standardized
from graphrec.train.blend import WEIGHTS, blend_partner, fit_partner, partner_name
from graphrec.train.evaluation import validate
from graphrec.train.loop import TrainResult, new_model, train_loop
from tests.conftest import make_config, tiny_config_dict
from tests.train.test_loop import graph_and_split


def lightgcn(cfg, **model):
    cfg.model.name = "lightgcn"
    cfg.train.objective, cfg.train.loss, cfg.train.epochs = "link", "bpr", 3
    for key, value in model.items():
        setattr(cfg.model, key, value)
    g, s = graph_and_split(cfg)
    model = new_model(g, s, cfg)
    result = train_loop(model, g, s, cfg, progress=False)
    return g, s, model, result


def test_blended_scores_are_the_standardized_mix_by_hand():
    gen = torch.Generator().manual_seed(0)
    ub, ib = torch.randn(5, 3, generator=gen), torch.randn(7, 3, generator=gen)
    up, ip = torch.randn(5, 7, generator=gen), torch.randn(7, 7, generator=gen)
    up[2] = 0.0  # a user the partner knows nothing about: its part adds nothing
    parts = standardized(ub, ib, 2), standardized(up, ip, 2)
    uv, iv = mix(*parts, 0.3)
    sb, sp = ub @ ib.t(), up @ ip.t()
    want = 0.7 * sb / sb.std(1, keepdim=True) + 0.3 * torch.nan_to_num(sp / sp.std(1, keepdim=True))
    assert torch.allclose(uv @ iv.t(), want, atol=1e-5)
    assert mix(*parts, 0.0)[0].shape == (5, 3) and mix(*parts, 1.0)[0].shape == (5, 7)
    with pytest.raises(ValueError, match="not in"):
        BlendedModel(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), 1.5)


def test_the_weight_is_chosen_on_validation_and_matches_validate(tiny_cfg):
    tiny_cfg.model.blend = "auto"
    g, s, model, result = lightgcn(tiny_cfg)
    base_val = result.best_val
    out = blend_partner(model, g, s, tiny_cfg, result)
    b = result.stats["blend"]
    assert b["partner"] == "ease" and set(b["partner_setting"]) == {"lam"}
    assert [r["weight"] for r in b["weights_tried"]] == list(WEIGHTS)
    vals = [r["val_ndcg@20"] for r in b["weights_tried"]]
    assert result.best_val == max(vals) >= base_val - 1e-9
    assert b["weight"] == WEIGHTS[vals.index(max(vals))]  # the first best: ties go to the base
    assert vals[0] == pytest.approx(base_val, abs=1e-6)  # weight 0 is the trained model
    assert out is model if b["weight"] == 0.0 else out.weight == b["weight"]
    # the fast search (validation users' scores, once) agrees with the training stage's
    # validation of the blended model at every weight
    partner, _ = fit_partner("ease", model.device, g, s, tiny_cfg, TrainResult())
    data = message_graph(g, s.train)
    for w, v in zip(WEIGHTS, vals, strict=True):
        blended = BlendedModel(model, partner, w)
        assert validate(blended, g, data, s, tiny_cfg)[1] == pytest.approx(v, abs=1e-6)


def test_a_fixed_weight_is_used_without_a_search(tiny_cfg):
    tiny_cfg.model.blend, tiny_cfg.model.blend_weight = "gfcf", 0.4
    g, s, model, result = lightgcn(tiny_cfg)
    out = blend_partner(model, g, s, tiny_cfg, result)
    assert isinstance(out, BlendedModel) and out.weight == 0.4
    assert result.stats["blend"]["partner"] == "gfcf"
    assert result.stats["blend"]["weights_tried"] == []
    uv, iv = out.vectors(message_graph(g, s.train))
    assert torch.isfinite(uv @ iv.t()).all()


def test_the_partner_follows_the_configuration_and_the_catalogue_size(tiny_cfg):
    cfg = tiny_cfg
    cfg.train.objective = "link"
    assert partner_name(cfg, 10, 20) is None  # model.blend defaults to none
    cfg.model.blend = "auto"
    assert partner_name(cfg, 10, 20) == "ease"
    assert partner_name(cfg, 10, 10**6) == "gfcf"  # EASE's 10^6 x 10^6 inverse: no
    assert partner_name(cfg, 10**7, 10**4) == "gfcf"  # 10^7 dense history rows: no
    closed = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name="ease"))
    assert partner_name(closed, 10, 20) is None  # a closed-form model is not blended


def test_a_rating_model_with_a_blend_is_refused(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["model"]["blend"] = "auto"
    with pytest.raises(ConfigError, match="a rating model is not blended: set model.blend=none"):
        check_model(make_config(data))  # train.objective defaults to rating (sage)


def test_blend_weight_outside_zero_one_is_refused(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["model"]["blend_weight"] = 1.5
    with pytest.raises(ConfigError, match=r"model.blend_weight=1.5: must be in \[0, 1\]"):
        make_config(data)


def final_run(tiny_root, tmp_path, **top):
    data = tiny_config_dict(tiny_root, tmp_path)
    data.update({"mode": "final", **top})
    data["model"].update(name="lightgcn", blend="auto")
    data["train"].update(objective="link", loss="bpr", epochs=6, patience=2)
    return run_job(make_config(data), progress=False).metrics


def test_final_mode_chooses_on_an_inner_validation_split_then_refits(tiny_root, tmp_path):
    m = final_run(tiny_root, tmp_path)
    chosen = m["chosen_on_validation"]
    assert set(chosen) >= {"train.epochs", "model.blend", "model.blend_weight", "model.ease.lam"}
    assert 1 <= chosen["train.epochs"] <= 6 and chosen["model.blend"] == "ease"
    assert chosen["val_ndcg@20"] is not None
    # the refit ran the chosen epochs on every edge, with the choices fixed in its config
    assert len(m["history"]) == chosen["train.epochs"]
    assert m["config"]["train"]["epochs"] == chosen["train.epochs"]
    assert m["config"]["model"]["blend_weight"] == chosen["model.blend_weight"]
    assert m["config"]["model"]["ease"]["lam"] == chosen["model.ease.lam"]
    n = m["stages"]["build"]["train_edges"]
    assert m["stages"]["choose"]["train_edges"] + m["stages"]["choose"]["val_edges"] == n
    assert m["stages"]["choose"]["val_edges"] > 0


def test_an_evaluate_run_reports_its_choices_as_final_mode_does(tiny_root, tmp_path):
    m = final_run(tiny_root, tmp_path, mode="evaluate")
    chosen = m["chosen_on_validation"]
    assert chosen["train.epochs"] == m["best_epoch"]
    assert chosen["val_ndcg@20"] == m["val_ndcg@20"]
    blend = m["stages"]["train"]["blend"]
    assert chosen["model.blend"] == ("none" if blend["weight"] == 0 else "ease")


def test_final_mode_without_inner_validation_fits_once(tiny_root, tmp_path):
    m = final_run(tiny_root, tmp_path, final_validation=False)
    assert "chosen_on_validation" not in m and "choose" not in m["stages"]
    assert len(m["history"]) == 6  # train.epochs as given: nothing to stop early on


def test_a_zero_weight_choice_drops_the_partner_from_the_refit(tiny_cfg):
    from graphrec.train.final import apply_choices
    from graphrec.train.loop import TrainResult

    tiny_cfg.model.name, tiny_cfg.model.blend = "lightgcn", "auto"
    tiny_cfg.train.objective, tiny_cfg.train.loss = "link", "bpr"
    result = TrainResult(best_epoch=4, val_metric="val_ndcg@20", best_val=0.5)
    result.stats["blend"] = {"partner": "ease", "partner_setting": {"lam": 30.0}, "weight": 0.0}
    cfg, chosen = apply_choices(tiny_cfg, result)
    assert cfg.model.blend == "none" and cfg.train.epochs == 4
    assert chosen == {"train.epochs": 4, "model.blend": "none", "val_ndcg@20": 0.5}
    result.stats["blend"]["weight"] = 0.6
    cfg, chosen = apply_choices(tiny_cfg, result)
    assert (cfg.model.blend, cfg.model.blend_weight, cfg.model.ease.lam) == ("ease", 0.6, 30.0)
