"""``graphrec transform``: a trained run's model on a later graph, new nodes embedded with no
gradient step, and a source that no longer matches the run refused in one line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from graphrec.cli import main
from graphrec.job import run_job
from graphrec.transform import read_run, transform_run
from tests.conftest import GENRES, make_config, tiny_config_dict

MODELS = ["sage", "lightgcn", "pinsage", "ease", "gfcf", "lightgcn+ease"]
NEW_USERS = [13, 14, 15]
NEW_MOVIES = [121, 122]


def later_graph(root: Path, dest: Path) -> Path:
    """``root``'s graph plus three users and two movies: the new users rate known and new
    movies, two known users rate the new movies."""
    shutil.copytree(root, dest)
    with open(dest / "movies.csv", "a", newline="") as f:
        w = csv.writer(f)
        for m in NEW_MOVIES:
            w.writerow([m, f"New movie {m}", "|".join(GENRES[:2])])
    with open(dest / "ratings.csv", "a", newline="") as f:
        w = csv.writer(f)
        for n, u in enumerate(NEW_USERS):
            for j, m in enumerate([101 + n, 105 + n, 109 + n, 113 + n, 121]):
                w.writerow([u, m, 5.0 - j % 2, 2_000_000 + j])
        w.writerow([1, 122, 4.0, 2_000_100])
        w.writerow([2, 121, 5.0, 2_000_101])
    return dest


def trained_run(tiny_root: Path, tmp_path: Path, model: str) -> Path:
    data = tiny_config_dict(tiny_root, tmp_path)
    name, _, partner = model.partition("+")
    data["model"].update(name=name, blend=partner or "none")
    data["train"].update(objective="link", loss="bpr", epochs=3)
    data["mode"] = "final"
    data["final_validation"] = False
    return run_job(make_config(data), progress=False).run_dir


@pytest.mark.parametrize("model", MODELS)
def test_transform_of_the_same_graph_gives_the_runs_recommendations(tiny_root, tmp_path, model):
    run = trained_run(tiny_root, tmp_path, model)
    out = transform_run(run, [f"write.run_dir={tmp_path / 'again'}"], progress=False)
    before = pq.read_table(run / "recommendations.parquet").to_pylist()
    after = pq.read_table(out.run_dir / "recommendations.parquet").to_pylist()
    assert [(r["user_id"], r["item_id"], r["rank"]) for r in after] == [
        (r["user_id"], r["item_id"], r["rank"]) for r in before
    ]
    assert torch.allclose(
        torch.tensor([r["score"] for r in after]), torch.tensor([r["score"] for r in before]),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip
    counts = out.metrics["nodes"]
    assert counts["user"] == {"known": 12, "new": 0, "gone": 0}


@pytest.mark.parametrize("model", MODELS)
def test_new_users_and_items_are_embedded_and_recommended(tiny_root, tmp_path, model):
    run = trained_run(tiny_root, tmp_path, model)
    later = later_graph(tiny_root, tmp_path / "later")
    out = transform_run(
        run, [f"extract.root={later}", f"write.run_dir={tmp_path / 't'}"], progress=False
    )
    m = out.metrics
    assert m["nodes"]["user"] == {"known": 12, "new": 3, "gone": 0}
    assert m["nodes"]["movie"] == {"known": 20, "new": 2, "gone": 0}
    recs = pq.read_table(out.run_dir / "recommendations.parquet").to_pylist()
    rated = {(r["userId"], r["movieId"]) for r in csv.DictReader(open(later / "ratings.csv"))}
    assert {r["user_id"] for r in recs} == set(range(1, 16))  # every user, new ones included
    assert not {(str(r["user_id"]), str(r["item_id"])) for r in recs} & rated
    recommended = {r["item_id"] for r in recs}
    can_rank_new = model.split("+")[0] in ("sage", "lightgcn", "pinsage")
    assert m["new_items_ranked"] is can_rank_new
    if not can_rank_new:  # left out of the rankings, never scored as if known
        assert not recommended & set(NEW_MOVIES)
    # the new folder is itself a run folder: transform again from it, new users only
    again = transform_run(
        out.run_dir, ["write.run_dir=" + str(tmp_path / "t2")], only_new=False, progress=False
    )
    assert again.metrics["nodes"]["user"] == {"known": 15, "new": 0, "gone": 0}
    only = transform_run(
        run, [f"extract.root={later}", f"write.run_dir={tmp_path / 'o'}"], only_new=True,
        progress=False,
    )  # fmt: skip
    mine = pq.read_table(only.run_dir / "recommendations.parquet").to_pylist()
    assert {r["user_id"] for r in mine} == set(NEW_USERS)
    full = [r for r in recs if r["user_id"] in NEW_USERS]  # the same rows as for everyone
    assert [(r["user_id"], r["item_id"]) for r in mine] == [
        (r["user_id"], r["item_id"]) for r in full
    ]
    assert torch.allclose(
        torch.tensor([r["score"] for r in mine]), torch.tensor([r["score"] for r in full]),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip


def test_a_new_user_is_ranked_from_its_history(tiny_root, tmp_path):
    """A new user with exactly a known user's history is scored like that user by the
    item-item model (EASE's users are their histories)."""
    run = trained_run(tiny_root, tmp_path, "ease")
    later = tmp_path / "later"
    shutil.copytree(tiny_root, later)
    rows = [r for r in csv.DictReader(open(tiny_root / "ratings.csv")) if r["userId"] == "4"]
    with open(later / "ratings.csv", "a", newline="") as f:
        w = csv.writer(f)
        for r in rows:
            w.writerow([99, r["movieId"], r["rating"], r["timestamp"]])
    out = transform_run(
        run, [f"extract.root={later}", f"write.run_dir={tmp_path / 't'}"], progress=False
    )
    recs = pq.read_table(out.run_dir / "recommendations.parquet").to_pylist()
    mine = [(r["item_id"], round(r["score"], 4)) for r in recs if r["user_id"] == 99]
    twin = [(r["item_id"], round(r["score"], 4)) for r in recs if r["user_id"] == 4]
    assert mine == twin and len(mine) == 3


def _cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_a_source_that_no_longer_matches_the_run_is_refused_in_one_line(
    tiny_root, tmp_path, capsys
):
    run = trained_run(tiny_root, tmp_path, "sage")
    # a property the encoders read is gone
    gone = tmp_path / "gone"
    shutil.copytree(tiny_root, gone)
    rows = list(csv.reader(open(gone / "movies.csv")))
    with open(gone / "movies.csv", "w", newline="") as f:
        csv.writer(f).writerows([r[:2] for r in rows])
    out = tmp_path / "out1"
    code, err = _cli(  # the config still lists it: the source says it is missing
        ["transform", "--run", str(run), "--quiet", f"extract.root={gone}", f"write.run_dir={out}"],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1 and "genres" in err, err
    code, err = _cli(  # the config no longer reads it: the run's encoders still do
        ["transform", "--run", str(run), "--quiet", f"extract.root={gone}",
         "extract.nodes.movie.properties={title: string}", "build.features={}",
         f"write.run_dir={out}"],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "movie.genres" in err and "no longer has" in err and not out.exists()
    # ids of another type
    text_ids = tmp_path / "text"
    shutil.copytree(tiny_root, text_ids)
    for name, col in (("movies.csv", 0), ("ratings.csv", 1)):
        rows = list(csv.reader(open(text_ids / name)))
        for r in rows[1:]:
            r[col] = "m" + r[col]
        with open(text_ids / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    code, err = _cli(
        ["transform", "--run", str(run), "--quiet", f"extract.root={text_ids}",
         "extract.nodes.movie.properties.movieId=string", f"write.run_dir={tmp_path / 'out2'}"],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "movie ids were int64" in err and "string" in err
    # another target
    code, err = _cli(
        ["transform", "--run", str(run), "--quiet", "build.label=null", "build.target=other"],
        capsys,
    )
    assert code == 2 and len(err.splitlines()) == 1 and "target" in err, err
    # not a run folder
    (tmp_path / "empty").mkdir()
    code, err = _cli(["transform", "--run", str(tmp_path / "empty")], capsys)
    assert code == 2 and "checkpoint.pt" in err and len(err.splitlines()) == 1
    assert read_run(run).checkpoint["target"] == ["user", "rates", "movie"]


def test_a_model_without_a_rule_for_new_nodes_refuses_in_one_line(
    tiny_root, tmp_path, capsys, monkeypatch
):
    import dataclasses

    from graphrec.models.registry import MODELS

    run = trained_run(tiny_root, tmp_path, "sage")
    monkeypatch.setitem(MODELS, "sage", dataclasses.replace(MODELS["sage"], embed_new=None))
    out = tmp_path / "t"
    code, err = _cli(["transform", "--run", str(run), "--quiet", f"write.run_dir={out}"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "model.name=sage cannot embed nodes it never saw" in err and not out.exists()
