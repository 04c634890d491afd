"""``graphrec run --workers 2`` on MovieLens reaches the quality of one process.

Minutes of training on 2 cores, so these run as their own CI step (``-m quality``), not in
the default suite. Thresholds are the issue's: RMSE within 0.02 and NDCG@20 within 10%
(relative) of the single-process run of the same shipped config.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.config import load_config
from graphrec.job import run_job

pytestmark = [pytest.mark.ray, pytest.mark.quality]
ROOT = Path(__file__).resolve().parents[2]


def run(config: str, workers: int, tmp: Path) -> dict:
    cfg = load_config(
        ROOT / config,
        [
            f"write.run_dir={tmp / f'run-{workers}'}",
            f"train.checkpoint_path={tmp / 'ckpt'}",
            f"distributed.workers={workers}",
        ],
    )
    m = run_job(cfg, progress=False).metrics
    train = m["stages"]["train"]
    print(
        f"{config} workers={workers}: rmse={m['rmse']} ndcg@20={m['ndcg@20']:.4f} "
        f"best_epoch={m['best_epoch']} train {train['seconds']:.0f} s, "
        f"{train['labelled_edges_per_s']:,.0f} labelled edges/s"
    )
    return m


def test_rating_quality_with_two_workers(tmp_path, monkeypatch, ray_cluster):
    monkeypatch.chdir(ROOT)
    one = run("configs/movielens.yaml", 0, tmp_path)
    two = run("configs/movielens.yaml", 2, tmp_path)
    assert one["rmse"] < 0.87 and abs(two["rmse"] - one["rmse"]) <= 0.02, (one["rmse"], two["rmse"])


def test_link_quality_with_two_workers(tmp_path, monkeypatch, ray_cluster):
    monkeypatch.chdir(ROOT)
    one = run("configs/movielens-sage-link.yaml", 0, tmp_path)
    two = run("configs/movielens-sage-link.yaml", 2, tmp_path)
    pop = one["baseline_popularity"]["ndcg@20"]
    assert one["ndcg@20"] > pop * 1.4
    assert abs(two["ndcg@20"] - one["ndcg@20"]) <= 0.10 * one["ndcg@20"], (
        one["ndcg@20"],
        two["ndcg@20"],
    )
