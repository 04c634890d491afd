"""Numeric guards: no non-finite number reaches an output. A metric that cannot be
computed is an explicit null with a warning; non-finite scores are never written."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest
import torch
import yaml

from graphrec.errors import DataError, RunError
from graphrec.sinks.parquet import ParquetSink
from tests.conftest import tiny_config_dict, write_tiny_graph
from tests.reliability.conftest import run_cli


def test_a_three_edge_graph_writes_null_metrics_with_warnings(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    write_tiny_graph(root, users=1, movies=20, per_user=3)
    data = tiny_config_dict(root, tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    rc, out, err = run_cli(capsys, "run", "--config", str(path), "--quiet")
    assert rc == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())  # strict JSON
    nulls = [k for k in ("rmse", "recall@20", "ndcg@20") if metrics.get(k, 0) is None]
    assert nulls, metrics  # nothing to score on: null, not NaN
    warned = [line for line in err if "written as null" in line]
    assert len(warned) == 1, err
    assert warned[0].startswith("graphrec: warning: ")
    assert all(key in warned[0] for key in nulls)
    text = (tmp_path / "run" / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text


class _Diverged(torch.nn.Module):
    """Stands for a model whose scores are not finite (as after a blown-up step)."""

    device = torch.device("cpu")

    def vectors(self, data):
        u = torch.ones(12, 4)
        u[3] = float("nan")
        return u, torch.ones(20, 4)


def test_recommend_refuses_non_finite_scores(tiny_cfg):
    from graphrec.graph import build_graph
    from graphrec.loaders import extract, make_source
    from graphrec.recommend import recommend_all

    g = build_graph(extract(make_source(tiny_cfg.extract), progress=False), tiny_cfg, False)
    with pytest.raises(RunError, match=r"scores are not finite \(first for user 4\)"):
        recommend_all(_Diverged(), g, tiny_cfg, progress=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), None])
def test_sinks_refuse_non_finite_scores(tmp_path, bad):
    table = pa.table(
        {
            "user_id": [1, 1],
            "item_id": [2, 3],
            "rank": pa.array([1, 2], pa.int32()),
            "score": pa.array([0.5, bad], pa.float32()),
        }
    )
    out = tmp_path / "recs.parquet"
    with pytest.raises(DataError, match="1 recommendation scores are not finite"):
        ParquetSink(out).write(table)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_finite_or_null_replaces_every_non_finite_number():
    from graphrec.outputs import finite_or_null

    clean, nulls = finite_or_null(
        {"a": 1.0, "b": math.nan, "c": {"d": math.inf, "e": [1.0, -math.inf]}, "f": "nan"}
    )
    assert clean == {"a": 1.0, "b": None, "c": {"d": None, "e": [1.0, None]}, "f": "nan"}
    assert nulls == ["b", "c.d", "c.e[1]"]
