"""Resume that cannot cross runs: ``--resume`` continues only a run of exactly this
config (checked by a digest of the settings that shape data and model), a given run id
of other settings is refused, a new run never reuses a run id that has checkpoints, and
a corrupt newest checkpoint falls back to the previous intact one."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.reliability.conftest import assert_one_line, run_cli, tree


def _train(capsys, path, *overrides):
    rc, out, err = run_cli(capsys, "train", "--config", str(path), "--quiet", *overrides)
    summary = json.loads(out[: out.rindex("}") + 1]) if rc == 0 else None
    return rc, summary, err


def _runs(tmp_path):
    return sorted(p.name for p in (tmp_path / "checkpoints").iterdir())


def test_resume_skips_a_run_whose_name_shares_the_prefix(tiny, tmp_path, capsys):
    """Config 'tiny' must not continue run 'tiny-link-...' of config 'tiny-link'."""
    path, data = tiny
    other = dict(data, name="tiny-link")
    other_path = tmp_path / "other.yaml"
    other_path.write_text(yaml.safe_dump(other))
    rc, first, _ = _train(capsys, other_path, "train.epochs=1", "write.run_dir=")
    assert rc == 0 and first["train"]["run_id"].startswith("tiny-link-")
    before = tree(tmp_path / "checkpoints")
    rc, _, err = _train(capsys, path, "--resume", "train.epochs=2", "write.run_dir=")
    assert rc == 2
    assert_one_line(err, "train.resume: no run of this config", "have other settings")
    assert tree(tmp_path / "checkpoints") == before


def test_resume_skips_a_run_of_other_settings_and_picks_the_matching_one(tiny, tmp_path, capsys):
    path, _ = tiny
    rc, mine, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    assert rc == 0
    rc, newer, _ = _train(capsys, path, "train.epochs=1", "model.hidden=16", "write.run_dir=")
    assert rc == 0  # newer, but other settings
    rc, resumed, _ = _train(capsys, path, "--resume", "train.epochs=2", "write.run_dir=")
    assert rc == 0
    assert resumed["train"]["run_id"] == mine["train"]["run_id"]
    assert resumed["train"]["restored_from_epochs"] == [1]


def test_resume_of_a_named_run_with_other_settings_is_refused(tiny, tmp_path, capsys):
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    run_id = first["train"]["run_id"]
    before = tree(tmp_path / "checkpoints")
    rc, _, err = _train(
        capsys, path, "--resume", f"train.run_id={run_id}", "model.hidden=16", "train.lr=0.1",
        "write.run_dir=",
    )  # fmt: skip
    assert rc == 2
    assert_one_line(
        err, f"run {run_id} was trained with other settings", "model.hidden", "train.lr"
    )
    assert tree(tmp_path / "checkpoints") == before


def test_a_new_run_never_reuses_a_run_id_with_checkpoints(tiny, tmp_path, capsys):
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    run_id = first["train"]["run_id"]
    before = tree(tmp_path / "checkpoints")
    rc, _, err = _train(capsys, path, f"train.run_id={run_id}", "write.run_dir=")
    assert rc == 2
    assert_one_line(err, f"train.run_id={run_id} already has checkpoints", "--resume")
    assert tree(tmp_path / "checkpoints") == before


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _foreign(path):
    torch.save({"weights": torch.zeros(3)}, path)


def _garbage(path):
    path.write_bytes(b"this is not a checkpoint")


def _removed(path):
    path.unlink()


def _other_settings(path):
    state = torch.load(path, weights_only=False)
    state["config_digest"] = "0" * 16
    torch.save(state, path)


DAMAGE = {
    "truncated": _truncate,
    "foreign torch file": _foreign,
    "garbage bytes": _garbage,
    "file missing": _removed,
    "written by other settings": _other_settings,
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tiny, tmp_path, capsys, damage):
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=2", "write.run_dir=")
    run = tmp_path / "checkpoints" / first["train"]["run_id"]
    damage(run / "checkpoint_epoch_000002" / "train_state.pt")
    rc, resumed, err = _train(capsys, path, "--resume", "train.epochs=3", "write.run_dir=")
    assert rc == 0, err
    assert resumed["train"]["restored_from_epochs"] == [1]
    warning = [line for line in err if line.startswith("graphrec: warning: checkpoint")]
    assert len(warning) == 1 and "checkpoint_epoch_000002" in warning[0]
    assert "trying the one before" in warning[0]


def test_no_intact_checkpoint_is_one_line(tiny, tmp_path, capsys):
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=2", "write.run_dir=")
    run = tmp_path / "checkpoints" / first["train"]["run_id"]
    for ckpt in run.glob("checkpoint_epoch_*"):
        _truncate(ckpt / "train_state.pt")
    rc, _, err = _train(capsys, path, "--resume", "train.epochs=3", "write.run_dir=")
    assert rc == 2
    assert err[-1].startswith("graphrec: error: train.resume: no intact checkpoint under")
    assert all(line.startswith("graphrec: warning: checkpoint") for line in err[:-1])


def test_resume_of_a_run_without_run_file_is_refused(tiny, tmp_path, capsys):
    """A run folder without run.json (made by hand or by an older graphrec) cannot be
    checked: refused rather than guessed."""
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    run_id = first["train"]["run_id"]
    (tmp_path / "checkpoints" / run_id / "run.json").unlink()
    rc, _, err = _train(capsys, path, "--resume", f"train.run_id={run_id}", "write.run_dir=")
    assert rc == 2
    assert_one_line(err, "has no readable run.json")


def _append_user(root):
    with open(root / "ratings.csv", "a") as f:
        f.write("99,103,4.0,1000999\n")


def _rename_user(root):
    lines = (root / "ratings.csv").read_text().splitlines()
    lines[1:] = [("100" + line[1:]) if line.startswith("1,") else line for line in lines[1:]]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("change", [_append_user, _rename_user], ids=["new user", "renamed user"])
def test_resume_on_changed_data_is_refused(tiny, tmp_path, capsys, change):
    """The data changed between the stop and the resume (a nightly source): the
    checkpoint's embedding rows would belong to other nodes, so it is refused."""
    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    assert rc == 0
    change(tmp_path / "data")
    before = tree(tmp_path / "checkpoints")
    rc, _, err = _train(
        capsys, path, "--resume", f"train.run_id={first['train']['run_id']}", "train.epochs=3",
        "write.run_dir=",
    )  # fmt: skip
    assert rc == 2
    assert_one_line(err, "was trained on other data", "start a new run")
    assert tree(tmp_path / "checkpoints") == before


def test_a_run_id_being_trained_is_refused(tiny, tmp_path, capsys):
    """One process per run id: a second trainer of the same run (a retried Job while the
    first still runs) is refused before it touches the checkpoints."""
    import os
    import socket

    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    run = tmp_path / "checkpoints" / first["train"]["run_id"]
    lock = run / "run.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    before = tree(tmp_path / "checkpoints")
    rc, _, err = _train(
        capsys, path, "--resume", f"train.run_id={run.name}", "train.epochs=2", "write.run_dir="
    )
    assert rc == 2
    assert_one_line(err, f"train.run_id={run.name} is being trained now by pid {os.getpid()}")
    assert tree(tmp_path / "checkpoints") == before


def test_a_stale_run_lock_is_taken_over(tiny, tmp_path, capsys):
    import socket

    from tests.reliability.test_run_folders import _dead_pid

    path, _ = tiny
    rc, first, _ = _train(capsys, path, "train.epochs=1", "write.run_dir=")
    run = tmp_path / "checkpoints" / first["train"]["run_id"]
    (run / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid()}))
    rc, resumed, err = _train(
        capsys, path, "--resume", f"train.run_id={run.name}", "train.epochs=2", "write.run_dir="
    )
    assert rc == 0, err
    assert any("taking over the lock" in line for line in err)
    assert resumed["train"]["restored_from_epochs"] == [1]
    assert not (run / "run.lock").exists()  # given back at the end
