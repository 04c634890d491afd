"""`graphrec synth`: seeded, power-law, unique pairs, and readable by the shipped config."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from graphrec.config import load_config
from graphrec.job import run_job
from graphrec.synth import synth_graph

ROOT = Path(__file__).resolve().parents[1]


def test_synth_is_seeded_unique_and_skewed(tmp_path):
    a = synth_graph(tmp_path / "a", 50_000, items=2000, seed=3, chunk_edges=10_000, progress=False)
    synth_graph(tmp_path / "b", 50_000, items=2000, seed=3, chunk_edges=10_000, progress=False)
    ra, rb = (
        pq.read_table(tmp_path / "a/ratings.parquet"),
        pq.read_table(tmp_path / "b/ratings.parquet"),
    )
    assert ra.equals(rb) and a["edges"] == ra.num_rows
    assert 0.8 * 50_000 < ra.num_rows < 1.2 * 50_000
    u, i = ra.column("userId").to_numpy(), ra.column("itemId").to_numpy()
    assert len(np.unique(u * 10**7 + i)) == len(u)  # no repeated (user, item)
    item_deg = np.sort(np.bincount(i))[::-1]
    assert item_deg[: len(item_deg) // 10].sum() > 0.3 * len(i)  # top 10% of items: >30%
    user_deg = np.sort(np.bincount(u))[::-1]
    assert user_deg[: len(user_deg) // 10].sum() > 0.3 * len(u)
    r = ra.column("rating").to_numpy()
    assert r.min() >= 0.5 and r.max() <= 5.0 and np.all((r * 2) == np.round(r * 2))
    assert pq.ParquetFile(tmp_path / "a/ratings.parquet").metadata.num_rows == ra.num_rows


def test_shipped_synth_config_runs(tmp_path, monkeypatch):
    synth_graph(tmp_path / "g", 5_000, items=300, seed=0, progress=False)
    monkeypatch.chdir(ROOT)
    cfg = load_config(
        "configs/synth.yaml",
        [
            f"extract.root={tmp_path / 'g'}",
            f"write.run_dir={tmp_path / 'run'}",
            f"extract.snapshot_dir={tmp_path / 'snap'}",
            "train.epochs=1",
            f"train.checkpoint_path={tmp_path / 'ckpt'}",
        ],
    )
    m = run_job(cfg, progress=False).metrics
    assert (
        m["rmse"] < 2.0 and m["recommendations"]["rows"] == 10 * m["stages"]["recommend"]["users"]
    )
