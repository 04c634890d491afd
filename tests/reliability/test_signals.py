"""SIGTERM and SIGINT anywhere: one line naming the stage and what was written, exit 143
or 130, the staging folder removed, nothing else touched.

In-process cases send a real signal to this process at a chosen point of each stage (the
stage's function is wrapped to raise it first); child-process cases signal a real
``graphrec`` process from outside while it trains, as Kubernetes or Ray would.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import child, run_cli, tree

# stage -> (module attribute the job calls in that stage)
STAGES = {
    "extract": "graphrec.pipeline.extract_cached",
    "build": "graphrec.pipeline.build_graph",
    "train": "graphrec.job.train_loop_per_worker",
    "evaluate": "graphrec.job.evaluate_test",
    "recommend": "graphrec.job.recommend_all",
    "write": "graphrec.sinks.parquet.ParquetSink._write",
    "write (checkpoint)": "graphrec.job.save_checkpoint",
}


def _signal_first(target, signum):
    def wrapped(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises long before this ends
        raise AssertionError("the signal did not interrupt")

    return wrapped


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("stage", STAGES, ids=list(STAGES))
def test_signal_in_each_stage(tiny, tmp_path, capsys, monkeypatch, stage, signum):
    path, _ = tiny
    module, _, attr = STAGES[stage].rpartition(".")
    import importlib

    try:
        owner = importlib.import_module(module)
    except ModuleNotFoundError:  # a class attribute
        mod, _, cls = module.rpartition(".")
        owner = getattr(importlib.import_module(mod), cls)
    monkeypatch.setattr(owner, attr, _signal_first(getattr(owner, attr), signum))
    before = tree(tmp_path / "data")
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    rc, out, err = run_cli(capsys, "run", "--config", str(path), "--quiet")
    name = signal.Signals(signum).name
    assert rc == 128 + signum
    assert len(err) == 1, err
    assert err[0].startswith(
        f"graphrec: interrupted by {name} during {stage.split()[0]}; nothing was written"
    ), err
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert tree(tmp_path / "data") == before
    # handlers are given back: this process is not left ignoring signals
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def _wait_for_checkpoint(folder: Path, proc, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if list(folder.glob("*/checkpoint_epoch_*")):
            return
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_a_training_process_then_resume(tiny, tmp_path, signum):
    """A real child process trains; the signal comes from outside. It ends with one line
    that names the kept checkpoints, and --resume continues from them."""
    path, _ = tiny
    ckpts = tmp_path / "checkpoints"
    args = ["run", "--config", str(path), "--quiet", "train.epochs=100000"]
    proc = child(args, tmp_path)
    _wait_for_checkpoint(ckpts, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"graphrec: interrupted by {name} during train; nothing was written")
    assert "its checkpoints are kept in" in lines[0] and "--resume train.run_id=" in lines[0]
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    if signum != signal.SIGTERM:
        return  # resuming is the same after either signal: once is enough

    run_id = lines[0].rsplit("train.run_id=", 1)[1].rstrip(")")
    done = max(int(p.name.rsplit("_", 1)[1]) for p in (ckpts / run_id).glob("checkpoint_epoch_*"))
    resumed = child(
        ["run", "--config", str(path), "--quiet", "--resume", f"train.epochs={done + 1}"],
        tmp_path,
    )
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert (tmp_path / "run" / "recommendations.parquet").is_file()
    assert f'"run_id": "{run_id}"' in out
    assert f'"restored_from_epochs": [\n   {done}\n  ]' in out or f"[{done}]" in out.replace(
        "\n", ""
    ).replace(" ", "")


def test_a_killed_run_leaves_a_staging_folder_that_is_named_then_cleaned(tiny, tmp_path, capsys):
    """SIGKILL runs no cleanup: the staging folder stays. The next run beside it names it,
    and ``graphrec clean`` removes it (and nothing else)."""
    path, _ = tiny
    proc = child(["run", "--config", str(path), "--quiet", "train.epochs=100000"], tmp_path)
    _wait_for_checkpoint(tmp_path / "checkpoints", proc)
    proc.kill()
    proc.communicate(timeout=60)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".run.partial-")]
    assert len(left) == 1
    before = tree(tmp_path / "data")

    rc, _, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", f"write.run_dir={tmp_path / 'run2'}"
    )
    assert rc == 0
    assert any("unfinished run folder" in line and left[0].name in line for line in err), err
    assert left[0].exists()

    rc, out, _ = run_cli(capsys, "clean", str(tmp_path))
    assert rc == 0 and f"removed {left[0]}" in out
    assert not left[0].exists()
    assert (tmp_path / "run2" / "manifest.json").is_file()
    assert tree(tmp_path / "data") == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_the_process_group_with_sampler_workers(tiny, tmp_path, signum):
    """Ctrl-C in a terminal (or ``kill -- -PGID``) reaches the DataLoader workers too:
    still one line and 130/143, no worker tracebacks."""
    path, _ = tiny
    args = [
        "train",
        "--config",
        str(path),
        "--quiet",
        "train.epochs=100000",
        "sampler.num_workers=2",
    ]
    proc = child(args, tmp_path, start_new_session=True)
    _wait_for_checkpoint(tmp_path / "checkpoints", proc)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 128 + signum, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"graphrec: interrupted by {signal.Signals(signum).name}")
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.fixture
def cli_handlers():
    """The CLI's SIGINT/SIGTERM handlers installed in this process, restored afterwards."""
    from graphrec import cli
    from graphrec.errors import PENDING

    previous = cli._handle_signals()
    yield
    PENDING.clear()
    cli._restore_signals(previous)


class _ShutdownMeetsASignal:
    """Stands for a DataLoader iterator whose worker shutdown is hit by a signal midway. The
    signal is delivered to another thread (as a process-wide one may be, whatever the main
    thread blocks); Python then runs the handler in the main thread, inside the shutdown."""

    def __init__(self) -> None:
        self.finished = False

    def _shutdown_workers(self) -> None:
        import threading

        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        try:
            signal.pthread_kill(other.ident, signal.SIGINT)
            for _ in range(100_000):  # the handler runs at one of these bytecode boundaries
                pass
        finally:
            stop.set()
            other.join()
        self.finished = True


def test_a_signal_during_the_worker_shutdown_waits_for_its_end(cli_handlers):
    from graphrec.errors import Interrupted
    from graphrec.train.batches import finish_batches

    it = _ShutdownMeetsASignal()
    with pytest.raises(Interrupted) as caught:
        finish_batches(it)
    assert it.finished  # not cut in two: the interrupt came after the shutdown
    assert caught.value.signum == signal.SIGINT


def test_an_epoch_cut_short_shuts_down_quietly_and_keeps_its_own_error(cli_handlers):
    from graphrec.train.batches import finish_batches

    it = _ShutdownMeetsASignal()
    finish_batches(it, quiet=True)  # the error on the way up stays the one raised
    assert it.finished


def test_an_interrupt_swallowed_by_a_finaliser_prints_nothing_there():
    """A signal that lands inside a finaliser (multiprocessing's, as DataLoader workers shut
    down) raises where Python can only print "Exception ignored in ..." with a traceback;
    graphrec raises it again at the next step, so only other unraisable errors are shown."""
    import sys

    from graphrec.cli import _handle_signals, _restore_signals
    from graphrec.errors import Interrupted

    seen = []
    hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    previous = _handle_signals()
    try:

        class Dies:
            def __init__(self, exc):
                self.exc = exc

            def __del__(self):
                raise self.exc

        Dies(Interrupted(signal.SIGINT))  # dropped at once: __del__ raises, unraisable
        Dies(ValueError("a real bug"))
        assert [type(u.exc_value) for u in seen] == [ValueError]
    finally:
        _restore_signals(previous)
        given_back = sys.unraisablehook
        sys.unraisablehook = hook
    assert given_back == seen.append
