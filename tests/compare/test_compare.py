"""`graphrec compare` end to end on a tiny graph: every method, two seeds, one protocol."""

import json
import random

import pytest
import yaml

from graphrec.compare.report import verdicts
from graphrec.compare.runner import run_compare
from graphrec.compare.stats import paired_bootstrap, paired_margin, summarize
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
    baselines = ["popularity", "itemknn", "ease", "ease_rated", "bias", "biased_mf"]
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
        for name in ("ease", "ease_rated"):  # lam chosen on validation, every try recorded
            for run in res[name]["runs"]:
                chosen = run["chosen"]
                tried = chosen["tried"] if name == "ease" else chosen["tried"][0]["lam"]
                assert len(tried) >= 2
                if name == "ease":
                    assert chosen["val_ndcg@20"] == max(v for _, v in tried)
                    assert chosen["params"]["lam"] in [lam for lam, _ in tried]
        w = [r["chosen"]["params"]["low_label_weight"] for r in res["ease_rated"]["runs"]]
        assert set(w) <= {0.1, 0.3}
        for name, r in res.items():  # per-user NDCG@20, kept for paired intervals
            for run in r["runs"]:
                pu = run["per_user"]
                assert pu["users"] == sorted(pu["users"]) and len(pu["users"]) == run["users"]
                mean = sum(pu["ndcg@20"]) / len(pu["ndcg@20"])
                assert mean == pytest.approx(run["ndcg@20"], abs=1e-5), name
    text = md.read_text()
    assert "## random split" in text and "## temporal split" in text
    assert "**lightgcn** (graphrec)" in text and "Below popularity on NDCG@20" in text
    assert "95% interval over test users" in text


def test_leave_last_out_with_node2vec_knn(tiny_root, tmp_path):
    """compare on the per-user leave-last-out split: every user's last edge is test, the
    one before validation; node2vec_knn ranks on Node2Vec vectors of the training graph."""
    path = write_config(tiny_root, tmp_path, {}, ["popularity", "node2vec_knn"])
    data = yaml.safe_load(path.read_text())
    data["compare"].update(splits=["last"], seeds=[0])
    data["build"]["node2vec"] = {"dim": 8, "walks_per_node": 4, "epochs": 2}
    data["evaluate"] = {"positive_threshold": 0.0}  # every held-out edge is a positive
    path.write_text(yaml.safe_dump(data))
    out, md = run_compare(str(path), progress=False)
    res = out["results"]["last"]
    n_users = 12
    for name in ("popularity", "node2vec_knn"):
        run = res[name]["runs"][0]
        assert run["users"] == n_users  # every tiny user has several edges: one test each
        assert 0.0 <= run["ndcg@20"] <= 1.0
    assert "## last split" in md.read_text()
    # a projection without the items: the baseline says so before any walk
    from graphrec.compare.runner import Protocol, _node2vec_items
    from graphrec.config import Node2VecConfig
    from graphrec.graph.split import all_train
    from tests.graph.test_node2vec import _planted

    g = _planted()
    proto = Protocol(g, all_train(g.target_index.shape[1]), 4.0)
    with pytest.raises(ConfigError, match=r"node2vec_knn needs vectors of the items \('item'\)"):
        _node2vec_items(proto, Node2VecConfig(node_types=["user"]))
    assert _node2vec_items(proto, Node2VecConfig(dim=4, epochs=1)).shape == (40, 4)


def _runs(values_by_seed):
    return {
        "runs": [
            {"seed": s, "per_user": {"users": list(range(len(v))), "ndcg@20": v}}
            for s, v in values_by_seed.items()
        ]
    }


def test_paired_bootstrap_interval_covers_the_margin_and_narrows_with_more_users():
    gen = random.Random(0)
    few = {s: [gen.random() for _ in range(30)] for s in (0, 1)}
    many = {s: [gen.random() for _ in range(3000)] for s in (0, 1)}
    for data in (few, many):
        shifted = {s: [x - 0.05 for x in v] for s, v in data.items()}
        lo, hi = paired_bootstrap({"a": _runs(data), "b": _runs(shifted)}, "a", "b")
        assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)  # constant difference
    noisy = {s: [x + gen.gauss(0, 0.3) for x in v] for s, v in few.items()}
    lo_few, hi_few = paired_bootstrap({"a": _runs(few), "b": _runs(noisy)}, "a", "b")
    noisy = {s: [x + gen.gauss(0, 0.3) for x in v] for s, v in many.items()}
    lo_many, hi_many = paired_bootstrap({"a": _runs(many), "b": _runs(noisy)}, "a", "b")
    assert lo_few < lo_many <= hi_many < hi_few
    assert hi_many - lo_many < 0.05  # about 4 * 0.3 / sqrt(6000) = 0.015
    # runs without per-user values (older results) give no interval instead of a wrong one
    assert paired_bootstrap({"a": {"runs": [{"seed": 0}]}, "b": _runs(few)}, "a", "b") is None


def test_paired_bootstrap_refuses_different_user_sets():
    a = _runs({0: [0.1, 0.2]})
    b = {"runs": [{"seed": 0, "per_user": {"users": [0, 5], "ndcg@20": [0.1, 0.2]}}]}
    with pytest.raises(ValueError, match="different test users"):
        paired_bootstrap({"a": a, "b": b}, "a", "b")


def test_mean_std_and_paired_margin():
    rows = [{"seed": 0, "ndcg@20": 0.2, "x": 1.0}, {"seed": 1, "ndcg@20": 0.4, "x": 3.0}]
    s = summarize(rows)
    assert s["mean"]["ndcg@20"] == pytest.approx(0.3)
    assert s["std"]["ndcg@20"] == pytest.approx(0.1414213, rel=1e-5)  # sample std
    other = summarize([{"seed": 0, "ndcg@20": 0.1}, {"seed": 1, "ndcg@20": 0.35}])
    m = paired_margin({"a": s, "b": other}, "a", "b")
    assert m["per_seed"] == pytest.approx([0.1, 0.05])


def test_a_model_may_not_take_a_baselines_name(tiny_root, tmp_path):
    path = write_config(tiny_root, tmp_path, {"ease": ["model.name=ease"]}, ["ease"])
    with pytest.raises(ConfigError, match="ease is also a baseline's name"):
        run_compare(str(path), progress=False)
    assert not (tmp_path / "results").exists()


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


def _method(per_seed_values):
    runs = [
        {"seed": s, "ndcg@20": sum(v) / len(v), **_runs({s: v})["runs"][0]}
        for s, v in per_seed_values.items()
    ]
    return summarize(runs)


def test_verdicts_say_beats_only_when_seeds_and_test_users_agree():
    gen = random.Random(1)
    base = {s: [gen.random() * 0.4 for _ in range(400)] for s in (0, 1, 2)}

    def wiggle(j, size=0.3):  # zero-mean per-user noise
        return size if j % 2 else -size

    results = {
        "popularity": _method(base),
        # +0.1 for every user: beats by any measure
        "gnn": _method({s: [x + 0.1 for x in v] for s, v in base.items()}),
        # 0.03 below the GNN on every seed (more than the seed std, 0.007) but +-1 per user:
        # the test users' interval includes zero, so "within the noise"
        "als": _method(
            {s: [x + 0.07 + wiggle(j, 1.0) for j, x in enumerate(v)] for s, v in base.items()}
        ),
        # 0.002 below popularity on average, +-0.3 per user: not distinguishable
        "bpr": _method(
            {s: [x - 0.002 + wiggle(j) for j, x in enumerate(v)] for s, v in base.items()}
        ),
    }
    text = "\n".join(verdicts(results, ["gnn"]))
    assert "gnn beats popularity" in text
    assert "gnn is above, within the noise, als" in text
    assert "Below popularity on NDCG@20: bpr" in text
    assert "bpr: -0.0020" in text and "within the noise: the interval includes zero" in text
    assert "no graphrec ranking model measurably worse than popularity" in text
    assert '"beats"): passes.' in text


def test_sanity_check_fails_a_method_measurably_worse_than_popularity():
    gen = random.Random(2)
    base = {s: [gen.random() * 0.4 for _ in range(400)] for s in (0, 1, 2)}
    results = {
        "popularity": _method(base),
        # 0.05 below popularity for every user of every seed: worse by any measure
        "broken": _method({s: [x - 0.05 for x in v] for s, v in base.items()}),
        "rating": _method({s: [x - 0.2 for x in v] for s, v in base.items()}),
        "weak": _method({s: [x - 0.03 for x in v] for s, v in base.items()}),
    }
    for run in results["rating"]["runs"]:
        run["rmse"] = 0.9
    results["rating"] = summarize(results["rating"]["runs"])
    text = "\n".join(verdicts(results, ["broken", "rating"]))
    assert "broken: -0.0500" in text and "measurably worse" in text
    assert (
        "FAILS for broken; baselines measurably worse: weak (rating models, judged by RMSE: "
        "rating)." in text
    )


def test_results_json_joins_number_lists_and_leaves_strings_alone():
    from graphrec.compare.runner import dump_results

    out = {
        "overrides": ["compare.seeds=[0,1,2]", "x=[1, 2]"],
        "runs": [{"per_user": {"users": [0, 3, 7], "ndcg@20": [0.5, -1e-05, 0.0]}}],
        "names": ["a", "b"],
    }
    text = dump_results(out)
    assert json.loads(text) == out
    assert '"users": [0, 3, 7]' in text and '"ndcg@20": [0.5, -1e-05, 0.0]' in text
    assert '"compare.seeds=[0,1,2]"' in text


@pytest.mark.parametrize(
    "peak,expected", [(1600.0, [100, 400, 1600, 6400]), (6.25, [1.562, 6.25, 25, 100, 400])]
)
def test_the_ladder_walks_towards_the_validation_peak_and_keeps_the_best(
    monkeypatch, peak, expected
):
    import math

    from graphrec.compare import runner

    class Proto:
        def history(self):
            return None

    monkeypatch.setattr(
        runner, "_score", lambda proto, model, stage: {"ndcg@20": -abs(math.log(model / peak))}
    )
    val, params, model, tried = runner._ladder(Proto(), lambda h, p: p["lam"], {}, "lam", 100.0)
    assert [lam for lam, _ in tried] == expected
    assert params == {"lam": peak} and model == peak and val == 0.0
