"""The whole job end to end on tiny graphs (and a short run on the bundled MovieLens)."""

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from graphrec.cli import main
from graphrec.config import load_config
from graphrec.job import run_job
from tests.conftest import make_config, tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]


def check_recommendations(run_dir: Path, ratings: list[tuple], k: int, n_users: int):
    recs = pq.read_table(run_dir / "recommendations.parquet")
    assert recs.column_names == ["user_id", "item_id", "rank", "score"]
    rows = recs.to_pylist()
    seen = set(ratings)
    per_user: dict = {}
    for r in rows:
        per_user.setdefault(r["user_id"], []).append(r)
        assert (r["user_id"], r["item_id"]) not in seen  # never an item the user rated
    assert len(per_user) == n_users
    for user_rows in per_user.values():
        assert [r["rank"] for r in user_rows] == list(range(1, k + 1))
        assert len({r["item_id"] for r in user_rows}) == k
        scores = [r["score"] for r in user_rows]
        assert scores == sorted(scores, reverse=True)


def tiny_ratings(root):
    return [
        (int(r["userId"]), int(r["movieId"])) for r in csv.DictReader(open(root / "ratings.csv"))
    ]


@pytest.mark.parametrize(
    "objective,loss,negatives,model",
    [
        ("rating", "mse", 1, "sage"),
        ("rating", "weighted_mse", 1, "sage"),
        ("link", "bpr", 3, "sage"),
        ("link", "bce", 2, "sage"),
        ("link", "bpr", 2, "lightgcn"),
        ("link", "softmax", 5, "lightgcn"),
        ("link", "multinomial", 1, "pinsage"),
        ("link", "bce", 2, "pinsage+hard"),
        ("link", "bpr", 1, "ease"),
        ("link", "bpr", 1, "gfcf"),
    ],
)
def test_tiny_job_end_to_end(tiny_root, tmp_path, objective, loss, negatives, model):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["train"].update(objective=objective, loss=loss, num_negatives=negatives)
    data["model"]["name"], _, hard = model.partition("+")
    if hard:  # PinSage's hard negatives: half of them from the positive's neighbourhood
        data["train"]["hard_negatives"] = 0.5
    result = run_job(make_config(data), progress=False)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    for key in ("rmse", "recall@20", "ndcg@20", "baseline_popularity", "seconds"):
        assert key in m
    assert set(m["baseline_popularity"]) >= {"recall@20", "ndcg@20", "hit@20", "coverage@20"}
    assert (m["rmse"] is not None) == (objective == "rating")
    assert set(m["seconds"]) >= {"extract", "build", "train", "recommend", "write"}
    for name in ("checkpoint.pt", "training_curve.png", "id_map/user.parquet"):
        assert (result.run_dir / name).is_file()
    check_recommendations(result.run_dir, tiny_ratings(tiny_root), k=3, n_users=12)


def test_text_features_with_the_packaged_minilm(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path, text=True)
    data["mode"] = "final"
    result = run_job(make_config(data), progress=False)
    m = result.metrics
    assert m["stages"]["build"]["feature_dims"]["movie"] == 384 + 5
    assert "rmse" not in m  # final mode: nothing held out, nothing evaluated
    check_recommendations(result.run_dir, tiny_ratings(tiny_root), k=3, n_users=12)
    # the embeddings are cached: a second run does not encode again
    data["write"]["run_dir"] = str(tmp_path / "run2")
    again = run_job(make_config(data), progress=False)
    assert again.metrics["stages"]["build"]["text_cached"] is True


def test_failed_run_leaves_nothing_behind(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    (tiny_root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,101,x,5\n")
    with pytest.raises(Exception, match="is not a number"):
        run_job(make_config(data), progress=False)
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.glob(".run*"))


def test_cli_bad_input_is_one_line(tiny_root, tmp_path, capsys):
    import yaml

    data = tiny_config_dict(tiny_root, tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    with open(tiny_root / "ratings.csv", "a") as f:
        f.write("3,777,4.0,5\n")
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "ratings.csv, column 'movieId', row 97: 777 is not a movie id" in err


def test_debug_config_on_bundled_movielens(monkeypatch, tmp_path):
    """The shipped debug config: every MovieLens user gets exactly k unseen movies."""
    monkeypatch.chdir(ROOT)
    cfg = load_config(
        "configs/debug.yaml",
        [
            f"write.run_dir={tmp_path / 'run'}",
            f"extract.snapshot_dir={tmp_path / 'snap'}",
            f"train.checkpoint_path={tmp_path / 'ckpt'}",
        ],
    )
    result = run_job(cfg, progress=False)
    m = result.metrics
    # guard the numbers: a fixed-seed run must stay near its stored reference
    ref = json.loads((ROOT / "tests/reference/debug-metrics.json").read_text())
    for key, tol in ref["tolerance"].items():
        assert abs(m[key] - ref[key]) <= tol, (key, m[key], ref[key])
    for key, value in ref["baseline_popularity"].items():
        assert m["baseline_popularity"][key] == pytest.approx(value, abs=1e-9)
    ratings = [
        (int(r["userId"]), int(r["movieId"]))
        for r in csv.DictReader(open(ROOT / "data/movielens-small/ratings.csv"))
    ]
    check_recommendations(result.run_dir, ratings, k=10, n_users=610)


def test_cli_runs_with_options_and_overrides_in_any_order(tiny_root, tmp_path, capsys):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, tmp_path)))
    out = tmp_path / "cli-run"
    assert (
        main(
            [
                "run",
                "train.epochs=1",
                "--config",
                str(path),
                "--quiet",
                f"write.run_dir={out}",
                "recommend.k=2",
            ]
        )
        == 0
    )
    assert f"run folder: {out}" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["history"]) == 1 and m["recommendations"]["k"] == 2
    with pytest.raises(SystemExit):
        main(["run", "--config", str(path), "--no-such-flag"])


def test_auto_features_are_chosen_saved_and_encode_a_graph_alike(tiny_root, tmp_path):
    from graphrec.graph.hetero import encode_nodes
    from graphrec.loaders import extract, make_source

    data = tiny_config_dict(tiny_root, tmp_path)
    data["mode"] = "final"
    data["build"]["features"] = "auto"
    cfg = make_config(data)
    assert [(s.property, s.kind) for s in cfg.build.features["movie"]] == [
        ("title", "auto"), ("genres", "auto")
    ]  # fmt: skip
    result = run_job(cfg, progress=False)
    states = json.loads((result.run_dir / "encoders.json").read_text())
    assert [(s["property"], s["kind"]) for s in states["movie"]] == [
        ("title", "text"), ("genres", "multi_hot")
    ]  # fmt: skip
    assert result.metrics["stages"]["build"]["feature_dims"]["movie"] == 384 + 5
    tables = extract(make_source(cfg.extract), progress=False)
    fresh, fitted = encode_nodes(tables, cfg.build, {}, progress=False)
    again, _ = encode_nodes(tables, cfg.build, {}, progress=False, fitted=states)
    assert fitted == states and torch.equal(fresh["movie"], again["movie"])
