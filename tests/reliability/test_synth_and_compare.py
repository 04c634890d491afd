"""``graphrec synth`` and ``graphrec compare`` under faults: a synthetic graph appears whole
or not at all and never over an existing folder; a quality report never holds NaN."""

from __future__ import annotations

import json
import signal
import time

import pytest
import yaml

from tests.conftest import tiny_config_dict, write_tiny_graph
from tests.reliability.conftest import assert_one_line, child, run_cli, tree

BAD_SYNTH = [
    (["--edges", "nan"], "--edges nan is not a number of edges"),
    (["--edges", "inf"], "--edges inf is not a number of edges"),
    (["--edges", "0"], "--edges 0 must be >= 1000"),
    (["--edges", "-5"], "--edges -5 must be >= 1000"),
    (["--edges", "5000", "--users", "-3"], "--users -3 must be >= 1"),
    (["--edges", "5000", "--items", "1"], "--items 1 must be >= 2"),
    (["--edges", "5000", "--seed", "-1"], "--seed -1 must be >= 0"),
    (["--edges", "5000", "--users", "2", "--items", "10"], "do not fit 2 users x 10 items"),
]


@pytest.mark.parametrize("args,expected", BAD_SYNTH, ids=[" ".join(a) for a, _ in BAD_SYNTH])
def test_bad_synth_arguments_are_one_line(tmp_path, capsys, args, expected):
    rc, out, err = run_cli(capsys, "synth", *args, "--out", str(tmp_path / "g"), "--quiet")
    assert rc == 2
    assert_one_line(err, expected)
    assert not (tmp_path / "g").exists()


def test_synth_never_writes_into_an_existing_folder(tmp_path, capsys):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "mine.txt").write_text("keep")
    before = tree(tmp_path)
    rc, _, err = run_cli(capsys, "synth", "--edges", "2000", "--out", str(tmp_path / "g"))
    assert rc == 2
    assert_one_line(err, "already exists")
    assert tree(tmp_path) == before


def test_an_interrupted_synth_leaves_no_graph(tmp_path):
    out = tmp_path / "g"
    proc = child(["synth", "--edges", "3e7", "--out", str(out), "--quiet"], tmp_path)
    t0 = time.time()
    while not list(tmp_path.glob(".g.partial-*/*.parquet")):  # it is writing
        assert proc.poll() is None and time.time() - t0 < 120, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("graphrec: interrupted by SIGTERM during synth; nothing was written")
    )
    assert list(tmp_path.iterdir()) == []  # no graph, no staging folder


def test_compare_on_a_graph_with_nothing_to_score_writes_nulls(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    write_tiny_graph(root, users=1, movies=20, per_user=3)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(root, tmp_path)))
    rc, _, err = run_cli(
        capsys, "compare", "--config", str(path), "--quiet", "compare.seeds=[0,1]",
        "compare.baselines=[popularity,bias,itemknn]", "compare.models={sage: []}",
        f"compare.out={tmp_path / 'q'}",
    )  # fmt: skip
    assert rc == 0, err
    text = (tmp_path / "q" / "quality-tiny.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)  # strict JSON
    assert (tmp_path / "q" / "quality-tiny.md").is_file()
    assert any("written as null" in line for line in err)
