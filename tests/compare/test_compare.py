"""`graphrec compare` end to end on a tiny graph: every method, two seeds, one protocol."""

import json

import pytest
import yaml

from graphrec.compare.runner import paired_margin, run_compare, summarize
from graphrec.errors import ConfigError
from tests.conftest import tiny_config_dict


def write_config(tiny_root, tmp_path, models, baselines):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["compare"] = {
        "seeds": [0, 1],
        "splits": ["random", "temporal"],
        "baselines": baselines,
        "models": models,
        "out": str(tmp_path / "results"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_compare_writes_a_table_of_every_method_over_seeds(tiny_root, tmp_path):
    models = {
        "sage-rating": ["train.epochs=2"],
        "lightgcn": ["model.name=lightgcn", "train.objective=link", "train.loss=bpr"],
    }
    baselines = ["popularity", "itemknn", "bias", "biased_mf"]
    path = write_config(tiny_root, tmp_path, models, baselines)
    out, md = run_compare(str(path), progress=False)
    saved = json.loads((tmp_path / "results" / "quality-tiny.json").read_text())
    assert saved["seeds"] == [0, 1] and set(saved["results"]) == {"random", "temporal"}
    for kind in ("random", "temporal"):
        res = out["results"][kind]
        assert set(res) == set(models) | set(baselines)
        for name, r in res.items():
            assert [run["seed"] for run in r["runs"]] == [0, 1], name
            for key in ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "hit@10", "coverage@20"):
                assert 0.0 <= r["mean"][key] <= 1.0, (name, key)
        for name in ("bias", "biased_mf", "sage-rating"):
            assert res[name]["mean"]["rmse"] > 0 and res[name]["mean"]["mae"] > 0
        assert "rmse" not in res["lightgcn"]["mean"]
    text = md.read_text()
    assert "## random split" in text and "## temporal split" in text
    assert "**lightgcn** (graphrec)" in text and "Below popularity on NDCG@20" in text


def test_mean_std_and_paired_margin():
    rows = [{"seed": 0, "ndcg@20": 0.2, "x": 1.0}, {"seed": 1, "ndcg@20": 0.4, "x": 3.0}]
    s = summarize(rows)
    assert s["mean"]["ndcg@20"] == pytest.approx(0.3)
    assert s["std"]["ndcg@20"] == pytest.approx(0.1414213, rel=1e-5)  # sample std
    other = summarize([{"seed": 0, "ndcg@20": 0.1}, {"seed": 1, "ndcg@20": 0.35}])
    m = paired_margin({"a": s, "b": other}, "a", "b")
    assert m["per_seed"] == pytest.approx([0.1, 0.05])


def test_a_model_override_may_not_change_the_data(tiny_root, tmp_path):
    path = write_config(tiny_root, tmp_path, {"bad": ["build.split.seed=3"]}, ["popularity"])
    with pytest.raises(ConfigError, match="compare.models.bad"):
        run_compare(str(path), progress=False)


def test_rating_baselines_say_why_they_are_skipped_without_ratings(tiny_root, tmp_path):
    path = write_config(tiny_root, tmp_path, {}, ["popularity", "bias"])
    out, _ = run_compare(
        str(path),
        [
            "build.label=null",
            "train.objective=link",
            "train.loss=bce",
            "compare.seeds=[0]",
            "compare.splits=[random]",
        ],
        progress=False,
    )
    assert "rating label" in out["results"]["random"]["bias"]["skipped"]
