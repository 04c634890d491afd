"""A full disk for the run folder, the checkpoint folder and the snapshot cache: one line,
exit 1, nothing half-written left on the disk (a real size-limited tmpfs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import run_cli, tree

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path):
    """``make(free_bytes)``: a fresh 1 MiB tmpfs, filled up to ``free_bytes`` of room."""
    mounts: list[Path] = []

    def make(free: int) -> Path:
        disk = tmp_path / f"disk{len(mounts)}"
        disk.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a size-limited tmpfs here: {done.stderr.strip()}")
        mounts.append(disk)
        room = 1024 * 1024 - free
        if room > 0:
            with open(disk / "filler", "wb") as f:
                try:
                    f.write(b"\0" * room)
                except OSError:
                    pass
        return disk

    yield make
    for disk in mounts:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _no_partials(disk: Path) -> None:
    left = [p for p in disk.rglob("*") if ".partial" in p.name]
    assert not left, left


@pytest.mark.parametrize("free", [0, 16 * PAGE], ids=["no room", "room for a few files"])
def test_full_disk_for_the_run_folder(tiny, small_disk, capsys, free):
    path, _ = tiny
    disk = small_disk(free)
    before = tree(disk)
    rc, out, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", f"write.run_dir={disk / 'run'}"
    )
    assert rc == 1
    assert len(err) == 1 and err[0].startswith("graphrec: error: "), err
    assert "No space left on device" in err[0] or "no space left" in err[0]
    assert tree(disk) == before  # the staging folder is gone, nothing else touched
    assert not (disk / "run").exists()


def test_full_disk_for_the_snapshot_cache(tiny, small_disk, capsys, tmp_path):
    path, _ = tiny
    disk = small_disk(2 * PAGE)
    before = tree(disk)
    rc, _, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", f"extract.snapshot_dir={disk / 'snap'}"
    )
    assert rc == 1
    assert len(err) == 1 and "o space left" in err[0], err
    _no_partials(disk)
    assert {k: v for k, v in tree(disk).items()} == before
    assert not (tmp_path / "run").exists()


def test_full_disk_for_checkpoints_keeps_the_intact_ones(tiny, small_disk, capsys, tmp_path):
    """Room for one checkpoint: epoch 1 is written, epoch 2 fails; the message names the
    epoch that failed and where the intact checkpoint is, and no partial is left."""
    path, _ = tiny
    # measure one checkpoint of this config on the ordinary disk
    rc, _, _ = run_cli(
        capsys, "train", "--config", str(path), "--quiet", "train.epochs=1",
        f"train.checkpoint_path={tmp_path / 'probe'}", f"write.run_dir={tmp_path / 'probe-run'}",
    )  # fmt: skip
    assert rc == 0
    files = [p for p in (tmp_path / "probe").rglob("*") if p.is_file()]
    one = sum(-(-p.stat().st_size // PAGE) * PAGE for p in files)
    disk = small_disk(one + PAGE)  # one checkpoint fits, two do not
    rc, _, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", "train.epochs=3",
        f"train.checkpoint_path={disk}",
    )  # fmt: skip
    assert rc == 1
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("graphrec: error: checkpoint of epoch 2 could not be written"), line
    assert "its checkpoints are kept in" in line and "--resume train.run_id=" in line
    _no_partials(disk)
    kept = sorted(p.name for p in disk.glob("*/checkpoint_epoch_*"))
    assert kept == ["checkpoint_epoch_000001"]
    assert not (tmp_path / "run").exists()
