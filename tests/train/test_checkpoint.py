"""Checkpoints and resume in one process (no Ray): a stopped run continues where it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graphrec.cli import main
from graphrec.errors import ConfigError
from graphrec.graph import build_graph, split_edges
from graphrec.loaders import extract, make_source
from graphrec.train.batches import TrainInputs
from graphrec.train.loop import train_loop_per_worker
from tests.conftest import tiny_config_dict


def inputs_of(cfg):
    g = build_graph(extract(make_source(cfg.extract), progress=False), cfg, progress=False)
    s = split_edges(cfg.build.split, g.target_index.shape[1], g.target_index[0], g.time)
    return TrainInputs.of(g, s, cfg)


def run(cfg, inputs):
    return train_loop_per_worker({"cfg": cfg, "inputs": inputs, "progress": False})


def test_resume_continues_a_stopped_run_exactly(tiny_cfg):
    tiny_cfg.train.patience = 0
    tiny_cfg.train.epochs = 4
    inputs = inputs_of(tiny_cfg)
    _, whole = run(tiny_cfg, inputs)  # the uninterrupted run
    assert whole.stats["restored_from_epochs"] == []

    tiny_cfg.train.run_id = "stopped"
    tiny_cfg.train.epochs = 2  # "stopped" after epoch 2
    _, first = run(tiny_cfg, inputs)
    ckpts = sorted(p.name for p in (inputs_dir(tiny_cfg) / "stopped").glob("checkpoint_*"))
    assert ckpts == ["checkpoint_epoch_000001", "checkpoint_epoch_000002"]
    assert (inputs_dir(tiny_cfg) / "stopped/checkpoint_epoch_000002/id_map/user.parquet").is_file()

    tiny_cfg.train.epochs = 4
    tiny_cfg.train.resume = True
    model, resumed = run(tiny_cfg, inputs)
    assert resumed.stats["restored_from_epochs"] == [2]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == first.history
    # epochs 3 and 4 after the restore are the ones the uninterrupted run had
    for a, b in zip(resumed.history[2:], whole.history[2:], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["val_rmse"] == pytest.approx(b["val_rmse"], rel=1e-5)
    # only the newest keep_checkpoints (2) are kept
    ckpts = sorted(p.name for p in (inputs_dir(tiny_cfg) / "stopped").glob("checkpoint_*"))
    assert ckpts == ["checkpoint_epoch_000003", "checkpoint_epoch_000004"]


def inputs_dir(cfg):
    return Path(cfg.train.checkpoint_path)


def test_resume_without_a_checkpoint_says_so(tiny_cfg):
    tiny_cfg.train.resume = True
    tiny_cfg.train.run_id = "never-ran"
    with pytest.raises(ConfigError, match="no checkpoint under .*never-ran"):
        run(tiny_cfg, inputs_of(tiny_cfg))


def test_cli_train_then_resume_the_newest_run(tiny_root, tmp_path, capsys):
    import json

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, tmp_path)))
    args = ["train", "--config", str(path), "--quiet", "train.patience=0"]
    assert main([*args, "train.epochs=1", f"write.run_dir={tmp_path / 'a'}"]) == 0
    out = capsys.readouterr().out
    first = json.loads(out[: out.rindex("}") + 1])
    assert not (tmp_path / "a/recommendations.parquet").exists()  # train: no write-back
    assert main([*args, "--resume", "train.epochs=3", f"write.run_dir={tmp_path / 'b'}"]) == 0
    out = capsys.readouterr().out
    second = json.loads(out[: out.rindex("}") + 1])
    assert second["train"]["run_id"] == first["train"]["run_id"]
    assert second["train"]["restored_from_epochs"] == [1]
    metrics = json.loads((tmp_path / "b/metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
