"""The sampler benchmark: every mode measured, side by side with PyG's compiled sampler
where one is installed, saved as JSON."""

import json
import sys

import pytest

from graphrec.benchmark import sampler as bench


def test_every_mode_is_measured_and_saved(tmp_path, monkeypatch, capsys):
    argv = ["sampler", "--edges", "6000", "--users", "600", "--items", "200", "--batches", "2",
            "--batch-size", "32", "--out", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    (saved,) = tmp_path.glob("sampler-*.json")
    out = json.loads(saved.read_text())
    assert set(out["samplers"]) == set(bench.MODES) and out["torch_threads"] >= 1
    for mode, row in out["samplers"].items():
        assert row["graphrec"]["sampled_edges_per_s"] > 0, mode
        if mode in bench.compiled_modes():
            assert row["ratio_graphrec_over_compiled"] > 0
    if not bench.compiled_modes():
        assert "not installed" in out["pyg_compiled"]
    assert "temporal:" in capsys.readouterr().out


def test_an_unknown_mode_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(
        sys, "argv", ["sampler", "--modes", "uniform,sideways", "--out", str(tmp_path)]
    )
    with pytest.raises(SystemExit):
        bench.main()


def test_temporal_sampling_training_is_measured_side_by_side(tmp_path, monkeypatch, capsys):
    from graphrec.benchmark import temporal

    argv = ["temporal", "--config", "configs/debug.yaml", "--batches", "2", "--rounds", "2",
            "--out", str(tmp_path), "sampler.batch_size=256"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    temporal.main()
    (saved,) = tmp_path.glob("temporal-sampling-*.json")
    out = json.loads(saved.read_text())
    assert set(out["objectives"]) == {"rating", "link"}
    for row in out["objectives"].values():
        assert len(row["runs"]["plain"]) == len(row["runs"]["temporal"]) == 2
        assert all(v > 0 for v in row["runs"]["plain"] + row["runs"]["temporal"])
        assert set(row["best_seconds"]["temporal"]) == {"sample_seconds", "compute_seconds"}
        assert row["ratio_temporal_over_plain"] == pytest.approx(
            row["best"]["temporal"] / row["best"]["plain"]
        )
    assert "link:" in capsys.readouterr().out
