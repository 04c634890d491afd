"""Where the training loop runs: one process, or one of N data-parallel workers.

:func:`graphrec.train.loop.train_loop` talks to its surroundings only through a
:class:`TrainContext`: its rank and the world size, collectives over the workers, wrapping
the model for gradient synchronization, and reporting an epoch (metrics and, every
``train.checkpoint_every`` epochs, a checkpoint folder). This class is the single-process
context: collectives are the identity and checkpoints are plain folders under
``train.checkpoint_path``. The Ray Train and Ray Tune contexts in
:mod:`graphrec.distributed` subclass it, so nothing here imports Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.fs as pafs
import torch
from torch import Tensor, nn

from graphrec.config import JobConfig, to_dict
from graphrec.errors import ConfigError, RunError, warn
from graphrec.staging import alive

CHECKPOINT_PREFIX = "checkpoint_epoch_"
RUN_FILE = "run.json"
"""In every run's checkpoint folder: the config name and the digest of the settings that
shape its data and model; ``--resume`` continues only a run whose digest matches."""
STATE_KEYS = ("model", "optimizer", "rng", "gen", "history", "epoch", "best_model")


class TrainContext:
    """A single process: rank 0 of 1, checkpoints under ``train.checkpoint_path/run_id``."""

    rank: int = 0
    world_size: int = 1
    owns_run: bool = True
    """This context checks the run's checkpoint folder before training (a Ray driver does
    it for its workers)."""

    def __init__(self, cfg: JobConfig, device: torch.device | None = None) -> None:
        self.cfg = cfg
        self.device = device or resolve_device(cfg.train.device)
        self.data_digest: str | None = None
        """The graph's :meth:`~graphrec.graph.hetero.Graph.ids_digest`, set by the loop: a
        checkpoint of other data (other node ids at the same rows) is never resumed."""
        self._lock: Path | None = None
        self.run_uri: str | None = None
        if cfg.train.checkpoint_path is not None:
            self.run_uri = join_uri(cfg.train.checkpoint_path, resolve_run_id(cfg))

    # ---------------------------------------------------------------- collectives
    def all_reduce(self, t: Tensor, op: str = "sum") -> Tensor:
        """``op`` (sum, min or max) of ``t`` over the workers; every worker gets it."""
        return t

    def all_gather(self, values: list[float]) -> list[list[float]]:
        """Every worker's ``values``, indexed by rank."""
        return [list(values)]

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The module to call in training (DDP-wrapped across workers)."""
        return model

    # ---------------------------------------------------------------- checkpoints
    @contextlib.contextmanager
    def restored(self) -> Iterator[dict | None]:
        """The training state to continue from (the newest intact checkpoint of this run),
        or None to start afresh. A checkpoint that cannot be read, or belongs to other
        settings, is skipped with a warning in favour of the one before it. Called once,
        before the first epoch: it also checks that the run folder is this run's."""
        if self.owns_run and self.run_uri is not None:
            open_run(self.cfg, self.run_uri)
            self._lock = lock_run(self.run_uri, self.cfg.train.run_id)
        if not self.cfg.train.resume or self.run_uri is None:
            yield None
            return
        fs, base = pafs.FileSystem.from_uri(self.run_uri)
        epochs = checkpoint_epochs(fs, base)
        digest = settings_digest(self.cfg)
        for epoch in reversed(epochs):
            src = f"{base}/{CHECKPOINT_PREFIX}{epoch:06d}"
            try:
                with tempfile.TemporaryDirectory(prefix="graphrec-restore-") as tmp:
                    pafs.copy_files(src, tmp, source_filesystem=fs)
                    state = load_train_state(Path(tmp), digest)
            except (OSError, ValueError) as exc:
                warn(f"checkpoint {src} cannot be used ({_first_line(exc)}); trying the one before")
                continue
            if self.data_digest and state.get("data_digest") not in (None, self.data_digest):
                raise ConfigError(
                    f"train.resume: run {self.cfg.train.run_id} was trained on other data (the "
                    "node ids differ: the source or its snapshot changed): start a new run"
                )
            yield state
            return
        raise ConfigError(
            f"train.resume: no intact checkpoint under {self.run_uri} (set train.run_id to the "
            "run to continue, or drop --resume)"
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around the whole training: the run's lock (taken when it is opened) is given
        back at the end, however training ends."""
        try:
            yield
        finally:
            if self._lock is not None:
                with contextlib.suppress(OSError):
                    self._lock.unlink()
                self._lock = None

    def report(self, metrics: dict, epoch: int, write: Callable[[Path], None] | None) -> None:
        """End of an epoch: ``write(folder)`` fills a checkpoint (rank 0), which is saved.

        It is written under a temporary name and renamed, so a reader never sees half of
        one; a write that fails (a full disk) removes its partial folder and stops the run
        with the checkpoints written before intact."""
        if write is None or self.run_uri is None:
            return
        fs, base = pafs.FileSystem.from_uri(self.run_uri)
        name = f"{CHECKPOINT_PREFIX}{epoch:06d}"
        partial = f"{base}/.{name}.partial"
        try:
            claim_run(self.cfg, fs, base)
            fs.create_dir(partial, recursive=True)
            if isinstance(fs, pafs.LocalFileSystem):  # straight into place: no temp copy
                write(Path(partial))
            else:  # object storage: written locally, then uploaded
                with tempfile.TemporaryDirectory(prefix="graphrec-ckpt-") as tmp:
                    write(Path(tmp))
                    pafs.copy_files(tmp, partial, destination_filesystem=fs)
            with contextlib.suppress(FileNotFoundError, OSError):
                fs.delete_dir(f"{base}/{name}")
            fs.move(partial, f"{base}/{name}")
        except OSError as exc:
            with contextlib.suppress(OSError):
                fs.delete_dir(partial)
            raise RunError(
                f"checkpoint of epoch {epoch} could not be written to {base}: {_first_line(exc)}"
            ) from None
        for old in checkpoint_epochs(fs, base)[: -self.cfg.train.keep_checkpoints]:
            fs.delete_dir(f"{base}/{CHECKPOINT_PREFIX}{old:06d}")


def load_train_state(folder: Path, digest: str | None = None) -> dict:
    """``train_state.pt`` of a checkpoint folder; ValueError when it is truncated, not a
    graphrec checkpoint, or (with ``digest``) one of other settings."""
    path = folder / "train_state.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path.name} is not readable: {_first_line(exc)}") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise ValueError(f"{path.name} is not a graphrec training checkpoint")
    if digest is not None and state.get("config_digest") != digest:
        raise ValueError(f"{path.name} was written with other settings")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def resume_settings(cfg: JobConfig) -> dict:
    """The settings that shape a run's data and model: what must match for ``--resume``
    to continue it. Left out: where things are kept, how long to train, threads, device."""
    d = to_dict(cfg)
    out = {k: d[k] for k in ("mode", "extract", "build", "sampler", "model", "train", "evaluate")}
    for key in ("snapshot_dir", "parallelism", "batch_rows", "neo4j"):
        out["extract"].pop(key)
    out["build"].pop("cache_dir")
    out["sampler"].pop("num_workers")
    for key in (
        "epochs", "patience", "resume", "run_id", "checkpoint_path", "checkpoint_every",
        "keep_checkpoints", "threads", "device",
    ):  # fmt: skip
        out["train"].pop(key)
    out["evaluate"].pop("batch_users")
    return out


def settings_digest(cfg: JobConfig) -> str:
    blob = json.dumps(resume_settings(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def claim_run(cfg: JobConfig, fs: pafs.FileSystem, base: str) -> None:
    """Write the run's ``run.json`` (name, settings digest, settings) once."""
    path = f"{base}/{RUN_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.File:
        return
    fs.create_dir(base, recursive=True)
    body = {"name": cfg.name, "digest": settings_digest(cfg), "settings": resume_settings(cfg)}
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(body, indent=1, default=str).encode())


def read_run(fs: pafs.FileSystem, base: str) -> dict | None:
    """A run folder's ``run.json``, or None (missing or unreadable)."""
    try:
        with fs.open_input_stream(f"{base}/{RUN_FILE}") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def open_run(cfg: JobConfig, run_uri: str) -> None:
    """Before training: a resumed run must be this config's; a new run's folder must not
    hold another run's checkpoints (they would be overwritten)."""
    fs, base = pafs.FileSystem.from_uri(run_uri)
    run_id = cfg.train.run_id
    if cfg.train.resume:
        if not checkpoint_epochs(fs, base):
            raise ConfigError(
                f"train.resume: no checkpoint under {run_uri} (set train.run_id to the run to "
                "continue, or drop --resume)"
            )
        check_same_run(cfg, fs, base, run_id)
        return
    if read_run(fs, base) is not None or checkpoint_epochs(fs, base):
        raise ConfigError(
            f"train.run_id={run_id} already has checkpoints under {cfg.train.checkpoint_path}: "
            "pass --resume to continue it, or choose a new train.run_id"
        )


def lock_run(run_uri: str, run_id: str) -> Path | None:
    """Take ``run.lock`` in a local run folder (``O_EXCL``: one process at a time trains a
    run id); a lock whose process is gone on this host is taken over with a warning. Object
    storage has no such primitive: there, one trainer per run id is the operator's rule."""
    fs, base = pafs.FileSystem.from_uri(run_uri)
    if not isinstance(fs, pafs.LocalFileSystem):
        return None
    path = Path(base) / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):
                other = {}
            other = other if isinstance(other, dict) else {}
            pid = other.get("pid")
            if other.get("host") != me["host"] or (isinstance(pid, int) and alive(pid)):
                raise ConfigError(
                    f"train.run_id={run_id} is being trained now by pid {pid} on host "
                    f"{other.get('host')!r} ({path}): one process per run id"
                ) from None
            warn(f"{path}: taking over the lock of pid {pid}, which is gone")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        return path
    raise ConfigError(f"train.run_id={run_id}: could not take {path}")


def check_same_run(cfg: JobConfig, fs: pafs.FileSystem, base: str, run_id: str) -> None:
    """Refuse to resume ``run_id`` unless it was trained with this config's settings."""
    info = read_run(fs, base)
    if info is None:
        raise ConfigError(
            f"train.resume: {run_id} under {cfg.train.checkpoint_path} has no readable "
            f"{RUN_FILE}, so its settings cannot be checked: start a new run"
        )
    if info.get("name") != cfg.name or info.get("digest") != settings_digest(cfg):
        diff = _differences(info.get("settings", {}), resume_settings(cfg))
        if info.get("name") != cfg.name:
            diff.insert(0, "name")
        raise ConfigError(
            f"train.resume: run {run_id} was trained with other settings (differs in: "
            f"{', '.join(diff[:4]) or 'unknown'}{' ...' if len(diff) > 4 else ''}): "
            "resume it with the same config, or start a new run"
        )


def _differences(a: dict, b: dict, where: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        path = f"{where}.{key}" if where else key
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, path)
        elif json.dumps(x, default=str) != json.dumps(y, default=str):
            out.append(path)
    return out


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when one is visible, else the CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no GPU is visible: use train.device=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def newest_checkpoint(run_uri: str) -> tuple[pafs.FileSystem, str] | None:
    """The filesystem and path of the run's newest complete checkpoint, or None."""
    fs, base = pafs.FileSystem.from_uri(run_uri)
    epochs = checkpoint_epochs(fs, base)
    if not epochs:
        return None
    return fs, f"{base}/{CHECKPOINT_PREFIX}{epochs[-1]:06d}"


def checkpoint_epochs(fs: pafs.FileSystem, base: str) -> list[int]:
    """Epochs of the complete checkpoints in ``base``, oldest first."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except FileNotFoundError:
        return []
    pat = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
    found = [pat.match(Path(i.path).name) for i in infos if i.type == pafs.FileType.Directory]
    return sorted(int(m.group(1)) for m in found if m)


def resolve_run_id(cfg: JobConfig) -> str:
    """``train.run_id``; else, resuming, the newest ``<name>-*`` run; else a new stamp.

    The result is written back into ``cfg.train.run_id``, so every worker of a distributed
    run (which receives the config after this) agrees on it.
    """
    t = cfg.train
    if t.run_id:
        return t.run_id
    if t.resume and t.checkpoint_path is not None:
        fs, base = pafs.FileSystem.from_uri(absolute_uri(t.checkpoint_path))
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        runs = sorted(
            (i.mtime_ns or 0, Path(i.path).name)
            for i in infos
            if i.type == pafs.FileType.Directory and Path(i.path).name.startswith(f"{cfg.name}-")
        )
        digest = settings_digest(cfg)
        for _, run_id in reversed(runs):  # newest first: the newest run of exactly this config
            info = read_run(fs, f"{base}/{run_id}")
            if info and info.get("name") == cfg.name and info.get("digest") == digest:
                t.run_id = run_id
                return t.run_id
        others = f" ({len(runs)} run(s) named {cfg.name}-* have other settings)" if runs else ""
        raise ConfigError(
            f"train.resume: no run of this config under {t.checkpoint_path}{others}: "
            "set train.run_id, or drop --resume"
        )
    t.run_id = f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return t.run_id


def absolute_uri(path: str) -> str:
    """A URI as is; a local path made absolute (workers may run in another folder)."""
    if "://" in path:
        return path
    return str(Path(path).resolve())


def join_uri(root: str, name: str) -> str:
    return f"{absolute_uri(root).rstrip('/')}/{name}"
