"""A real two-node Ray cluster on this machine: a head and a second node started with
``ray start``, each with its own CPU, resources, object store and temp dir. The job is
run against it by the CLI (``--workers 2 distributed.address=...``): the extraction's
partitions are read by Ray tasks spread over both nodes (their Arrow batches come back
through the object store), and the two training workers, one CPU per node, sit on
different nodes and synchronise over gloo across them.

Checkpoints go to S3, not to a path the nodes share: an S3 API server on loopback (moto's
``moto_server``, a stand-in for AWS S3 or MinIO; real HTTP, the real S3 protocol through
pyarrow's S3 client), reached by every node through ``AWS_ENDPOINT_URL_S3``. A training
worker killed mid-run is replaced and training resumes from the checkpoint in S3."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_config_dict, write_tiny_graph

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BUCKET = "graphrec-checkpoints"
S3_ENV: dict[str, str] = {}


def _env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **S3_ENV}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 API server (moto, a stand-in for S3) with one bucket; its endpoint and dummy
    credentials in ``S3_ENV`` for the nodes and the job."""
    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install -e '.[test]' brings moto[server])")
    port = _port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    S3_ENV.update(
        AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
    )  # fmt: skip
    try:
        end = time.time() + 60
        while True:
            p = subprocess.run(
                [sys.executable, "-c",
                 f"import boto3; boto3.client('s3').create_bucket(Bucket='{BUCKET}')"],
                capture_output=True, text=True, env=_env(),
            )  # fmt: skip
            if p.returncode == 0:
                break
            if time.time() > end or proc.poll() is not None:
                raise AssertionError(f"S3 server not up: {p.stderr[-500:]} {log.read_text()}")
            time.sleep(0.5)
        yield f"s3://{BUCKET}"
    finally:
        _stop(proc)
        S3_ENV.clear()


def _node(args: list[str], log: Path) -> subprocess.Popen:
    """``ray start --block`` in its own session, so that stopping it stops exactly its
    processes (``ray stop`` would stop every Ray process on the machine)."""
    return subprocess.Popen(
        [RAY, "start", "--block", "--disable-usage-stats", *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, s3):
    if not Path(RAY).exists():
        pytest.skip(f"the ray command is not installed beside {sys.executable}")
    tmp = tmp_path_factory.mktemp("cluster")
    # Ray's sockets live under --temp-dir and a socket path may hold 107 bytes at most:
    # pytest's own temp folders grow too long for it (pytest-116/cluster0/second/session_...)
    short = Path(tempfile.mkdtemp(prefix="gr2n-", dir="/tmp"))
    port = _port()
    head = _node(
        ["--head", f"--port={port}", "--num-cpus=1", '--resources={"head": 1}',
         "--include-dashboard=false", "--object-store-memory=150000000",
         f"--temp-dir={short / 'head'}"],
        tmp / "head.log",
    )  # fmt: skip
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        _wait_nodes(address, 1, head, tmp / "head.log")
        second = _node(
            [f"--address={address}", "--num-cpus=1", '--resources={"second": 1}',
             "--object-store-memory=150000000", f"--temp-dir={short / 'second'}"],
            tmp / "second.log",
        )  # fmt: skip
        nodes.append(second)
        _wait_nodes(address, 2, second, tmp / "second.log")
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(short, ignore_errors=True)  # made above, for this fixture only


def _wait_nodes(address: str, n: int, proc: subprocess.Popen, log: Path) -> None:
    code = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    end = time.time() + 120
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"ray start exited: {log.read_text()[-2000:]}")
        p = subprocess.run(
            [sys.executable, "-c", code, address], capture_output=True, text=True, env=_env()
        )
        if p.returncode == 0 and p.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        time.sleep(1)
    raise AssertionError(f"{n} Ray node(s) not up in time: {log.read_text()[-2000:]}")


def _job(tmp_path: Path, address: str, **train) -> Path:
    root = tmp_path / "data"
    write_tiny_graph(root, users=24)
    rows = list(csv.reader(open(root / "ratings.csv")))
    (root / "ratings.csv").unlink()
    for n in range(4):  # four files: four partitions to spread
        with open(root / f"ratings_{n}.csv", "w", newline="") as f:
            csv.writer(f).writerows([rows[0], *rows[1 + n :: 4]])
    data = tiny_config_dict(root, tmp_path)
    data["extract"]["edges"]["rates"]["file"] = "ratings_*.csv"
    data["extract"]["snapshot_dir"] = None
    data["distributed"] = {"address": address, "cpus_per_worker": 1, "max_failures": 2}
    data["train"].update(train)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def _s3_client_env():
    """This process talks to the S3 stand-in too (pyarrow reads the endpoint from the
    environment), for the duration of a block."""
    old = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update(S3_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _s3_files(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    with _s3_client_env():
        fs, path = pafs.FileSystem.from_uri(uri)
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        return [i.path for i in infos if i.type == pafs.FileType.File]


def test_extraction_and_training_span_both_nodes(two_nodes, s3, tmp_path):
    path = _job(tmp_path, two_nodes, checkpoint_path=f"{s3}/spans", run_id="spans")
    p = subprocess.run(
        [sys.executable, "-m", "graphrec", "run", "--config", str(path), "--workers", "2",
         "--quiet"],
        cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ex = metrics["stages"]["extract"]
    assert ex["read_by"] == "ray tasks" and ex["read_on_nodes"] == 2
    assert ex["edges"] == 24 * 8
    train = metrics["stages"]["train"]
    assert train["workers"] == 2, train
    assert train["checkpoint"].startswith(f"{s3[len('s3://') :]}/spans/")
    assert metrics["recommendations"]["rows"] == 24 * 3
    assert any(f.endswith("train_state.pt") for f in _s3_files(f"{s3}/spans"))
    assert not (ROOT / "s3:").exists() and not (tmp_path / "checkpoints").exists()


def test_a_killed_worker_is_replaced_and_resumes_from_checkpoints_in_s3(two_nodes, s3, tmp_path):
    """Rank 1 is killed (SIGKILL) once a checkpoint is registered in S3: a new worker
    group restores from it and finishes every epoch once, in order."""
    import psutil

    epochs = 30
    path = _job(
        tmp_path, two_nodes, checkpoint_path=f"{s3}/kill", run_id="kill", epochs=epochs,
        patience=0,
    )  # fmt: skip
    job = subprocess.Popen(
        [sys.executable, "-m", "graphrec", "run", "--config", str(path), "--workers", "2",
         "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and job.poll() is None:
        pids = _registered_worker_pids(f"{s3}/kill/kill")
        if len(pids) == 2 and psutil.pid_exists(pids[1]):
            assert "RayTrainWorker" in " ".join(psutil.Process(pids[1]).cmdline())
            os.kill(pids[1], signal.SIGKILL)
            killed = pids[1]
        time.sleep(0.1)
    out, err = job.communicate(timeout=600)
    assert killed, f"no worker was killed mid-training: {err[-2000:]}"
    assert job.returncode == 0, err[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    train = metrics["stages"]["train"]
    restored = train["restored_from_epochs"]
    assert len(restored) >= 1 and restored[0] >= 1, train
    history = metrics["history"]
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert killed not in [w["pid"] for w in history[restored[0]]["workers"]]


def _registered_worker_pids(run_uri: str) -> list[int]:
    """The run's worker pids from its latest checkpoint registered in S3 (see
    ``test_ray_train.registered_worker_pids``)."""
    import io

    import pyarrow.fs as pafs
    import torch

    try:
        with _s3_client_env():
            fs, root = pafs.FileSystem.from_uri(run_uri)
            with fs.open_input_stream(f"{root}/checkpoint_manager_snapshot.json") as f:
                results = json.loads(f.read())["checkpoint_results"]
            names = [c["checkpoint_dir_name"] for c in results]
            with fs.open_input_stream(f"{root}/{names[-1]}/train_state.pt") as f:
                state = torch.load(io.BytesIO(f.read()), weights_only=False)
    except Exception:  # not there yet, or being written
        return []
    return [w["pid"] for w in state["history"][-1]["workers"]]
