"""Run folders that can never destroy anything: an existing folder is refused and left
as it was, names are unique even for runs started at the same instant, staging folders
are unique per run, leftovers of killed runs are named and removed only on request."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from graphrec.errors import RunError
from graphrec.staging import MARKER, leftover_staging, staged_dir
from tests.reliability.conftest import assert_one_line, child, run_cli, tree


def _existing_with_content(tmp: Path) -> Path:
    d = tmp / "precious"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    (d / "sub" / "x.bin").write_bytes(b"\x00\x01")
    return d


def _existing_empty(tmp: Path) -> Path:
    d = tmp / "empty"
    d.mkdir()
    return d


def _existing_file(tmp: Path) -> Path:
    f = tmp / "a-file"
    f.write_text("not a folder")
    return f


def _symlink(tmp: Path) -> Path:
    target = _existing_with_content(tmp)
    link = tmp / "link"
    link.symlink_to(target)
    return link


def _dot(tmp: Path) -> Path:
    return Path(".")


def _data(tmp: Path) -> Path:
    return Path("data")  # relative: the bundled data from the run's working folder


EXISTING = {
    "folder with files": _existing_with_content,
    "empty folder": _existing_empty,
    "a file": _existing_file,
    "a symlink to a folder": _symlink,
    "the working folder (.)": _dot,
    "the data folder": _data,
}


@pytest.mark.parametrize("make", EXISTING.values(), ids=EXISTING.keys())
def test_existing_run_dir_is_refused_and_untouched(tiny, tmp_path, capsys, monkeypatch, make):
    path, _ = tiny
    monkeypatch.chdir(tmp_path)  # "." and "data" are this test's folder and its graph
    target = make(tmp_path)
    before = tree(tmp_path)
    rc, _, err = run_cli(capsys, "run", "--config", str(path), "--quiet", f"write.run_dir={target}")
    assert rc == 2
    assert_one_line(err, "write.run_dir", "already exists", "never writes into a folder")
    assert tree(tmp_path) == before


def test_default_run_folders_are_unique_within_one_second(tiny, tmp_path, capsys, monkeypatch):
    from graphrec.job import _default_run_dir

    names = {_default_run_dir("x") for _ in range(200)}
    assert len(names) == 200


def test_two_runs_of_one_config_started_together_both_succeed(tiny, tmp_path):
    """Two real processes, same config, same instant: distinct folders, both complete."""
    path, data = tiny
    data["write"].pop("run_dir")  # the default: runs/<name>-<stamp>-<suffix>
    data["train"]["epochs"] = 1
    path.write_text(yaml.safe_dump(data))
    procs = [child(["run", "--config", str(path), "--quiet"], tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    folders = [out.strip().splitlines()[-1].removeprefix("run folder: ") for out, _ in outs]
    assert folders[0] != folders[1]
    for folder in folders:
        run = tmp_path / folder
        manifest = json.loads((run / "manifest.json").read_text())
        assert (run / "recommendations.parquet").is_file()
        # the manifest lists exactly the files of the folder, with their sizes
        files = {str(p.relative_to(run)): p.stat().st_size for p in run.rglob("*") if p.is_file()}
        files.pop("manifest.json")
        assert manifest["files"] == files
    assert not list((tmp_path / "runs").glob(".*partial*"))


def test_staging_folders_never_replace_each_other(tmp_path):
    """Two writers of one final name finish at the same instant: one wins, the other
    is refused, and the winner's files are whole."""
    final = tmp_path / "out"
    barrier = threading.Barrier(2)
    results: list = []

    def write(tag: str) -> None:
        try:
            with staged_dir(final) as work:
                (work / "who").write_text(tag)
                barrier.wait()
            results.append(("ok", tag))
        except RunError as exc:
            results.append(("refused", str(exc)))

    threads = [threading.Thread(target=write, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(r[0] for r in results)
    assert kinds == ["ok", "refused"]
    winner = next(r[1] for r in results if r[0] == "ok")
    assert (final / "who").read_text() == winner
    assert not (final / MARKER).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # both staging folders gone


def test_staging_folder_is_removed_on_error(tmp_path):
    with pytest.raises(ValueError), staged_dir(tmp_path / "out") as work:
        (work / "half").write_text("x")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_stage_removes_the_parent_folders_it_made_and_no_others(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError), staged_dir(tmp_path / "a" / "b" / "c" / "out"):
        raise ValueError("boom")
    assert tree(tmp_path) == {"a": "dir"}  # b/c were made by the run, a was there before


def _fake_leftover(parent: Path, name: str, pid: int) -> Path:
    d = parent / f".{name}.partial-{os.uname().nodename}-{pid}-abcd"
    d.mkdir(parents=True)
    (d / MARKER).write_text(
        json.dumps({"host": os.uname().nodename, "pid": pid, "started": time.time()})
    )
    (d / "metrics.json").write_text("{}")
    return d


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_are_named_by_the_next_run_and_cleaned_only_on_request(
    tiny, tmp_path, capsys, monkeypatch
):
    path, _ = tiny
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    dead = _fake_leftover(runs, "tiny-20260101-000000-aaaaaa", _dead_pid())
    live = _fake_leftover(runs, "tiny-20260101-000001-bbbbbb", os.getpid())  # still running
    foreign = runs / ".someone-elses.partial-x"  # no marker: not graphrec's
    foreign.mkdir()
    assert [p for p, _ in leftover_staging(runs)] == [dead]

    rc, out, err = run_cli(capsys, "run", "--config", str(path), "--quiet", "write.run_dir=")
    assert rc == 0
    assert any(
        line.startswith("graphrec: warning: 1 unfinished run folder") and dead.name in line
        for line in err
    ), err
    assert dead.exists()  # named, not removed

    rc, out, _ = run_cli(capsys, "clean", str(runs), "--dry-run")
    assert rc == 0 and f"would remove {dead}" in out and dead.exists()
    rc, out, _ = run_cli(capsys, "clean", str(runs))
    assert rc == 0 and f"removed {dead}" in out
    assert not dead.exists()
    assert live.exists() and foreign.exists()  # a live run's and a stranger's stay


@pytest.mark.parametrize("lr", ["1e30", "1e12"])
def test_diverging_loss_stops_at_once_and_writes_nothing(tiny, tmp_path, capsys, lr):
    """train.lr far too high: the first non-finite loss stops training with one line
    naming the epoch and step; no run folder, no recommendations."""
    path, _ = tiny
    rc, _, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", "train.epochs=50", f"train.lr={lr}"
    )
    assert rc == 1
    line = assert_one_line(err, "train: the loss is", "at epoch", "step", "nothing was written")
    assert "nan" in line or "inf" in line
    assert not (tmp_path / "run").exists()
