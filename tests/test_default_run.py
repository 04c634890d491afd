"""``graphrec run`` with no arguments (the README's first command) writes recommendations
that rank far better than popularity on the bundled MovieLens: its test NDCG@20 and the
popularity baseline's, both in its metrics.json. Minutes on 2 cores: CI's quality step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.cli import COMPARE_CONFIG, DEFAULT_CONFIG, main
from graphrec.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_config_is_a_ranker_and_compare_keeps_the_full_table():
    default = load_config(ROOT / DEFAULT_CONFIG)
    assert default.train.objective == "link" and default.mode == "evaluate"
    assert load_config(ROOT / COMPARE_CONFIG).compare.models  # every model and baseline


@pytest.mark.quality
def test_graphrec_run_without_arguments_beats_popularity_widely(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(ROOT)
    run_dir = tmp_path / "run"
    args = ["run", "--quiet", f"write.run_dir={run_dir}", f"train.checkpoint_path={tmp_path}"]
    assert main(args) == 0
    m = json.loads((run_dir / "metrics.json").read_text())
    ndcg, pop = m["ndcg@20"], m["baseline_popularity"]["ndcg@20"]
    print(f"graphrec run: test NDCG@20 {ndcg:.4f}, popularity {pop:.4f} ({ndcg / pop:.2f}x)")
    assert ndcg > 1.5 * pop, (ndcg, pop)
    assert (run_dir / "recommendations.parquet").is_file()
