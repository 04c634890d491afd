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
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.fs as pafs
import torch
from torch import Tensor, nn

from graphrec.config import JobConfig
from graphrec.errors import ConfigError

CHECKPOINT_PREFIX = "checkpoint_epoch_"


class TrainContext:
    """A single process: rank 0 of 1, checkpoints under ``train.checkpoint_path/run_id``."""

    rank: int = 0
    world_size: int = 1

    def __init__(self, cfg: JobConfig, device: torch.device | None = None) -> None:
        self.cfg = cfg
        self.device = device or resolve_device(cfg.train.device)
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
    def restored(self) -> Iterator[Path | None]:
        """The folder of the checkpoint to continue from, or None to start afresh."""
        if not self.cfg.train.resume or self.run_uri is None:
            yield None
            return
        newest = newest_checkpoint(self.run_uri)
        if newest is None:
            raise ConfigError(
                f"train.resume: no checkpoint under {self.run_uri} (set train.run_id to the "
                "run to continue, or drop --resume)"
            )
        fs, src = newest
        with tempfile.TemporaryDirectory(prefix="graphrec-restore-") as tmp:
            pafs.copy_files(src, tmp, source_filesystem=fs)
            yield Path(tmp)

    def report(self, metrics: dict, epoch: int, write: Callable[[Path], None] | None) -> None:
        """End of an epoch: ``write(folder)`` fills a checkpoint (rank 0), which is saved."""
        if write is None or self.run_uri is None:
            return
        fs, base = pafs.FileSystem.from_uri(self.run_uri)
        with tempfile.TemporaryDirectory(prefix="graphrec-ckpt-") as tmp:
            write(Path(tmp))
            name = f"{CHECKPOINT_PREFIX}{epoch:06d}"
            # written under a temporary name and renamed: a reader never sees half of it
            partial = f"{base}/.{name}.partial"
            fs.create_dir(partial, recursive=True)
            pafs.copy_files(tmp, partial, destination_filesystem=fs)
            with contextlib.suppress(FileNotFoundError, OSError):
                fs.delete_dir(f"{base}/{name}")
            fs.move(partial, f"{base}/{name}")
        for old in checkpoint_epochs(fs, base)[: -self.cfg.train.keep_checkpoints]:
            fs.delete_dir(f"{base}/{CHECKPOINT_PREFIX}{old:06d}")


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
        if not runs:
            raise ConfigError(
                f"train.resume: no run named {cfg.name}-* under {t.checkpoint_path}: "
                "set train.run_id"
            )
        t.run_id = runs[-1][1]
        return t.run_id
    t.run_id = f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    return t.run_id


def absolute_uri(path: str) -> str:
    """A URI as is; a local path made absolute (workers may run in another folder)."""
    if "://" in path:
        return path
    return str(Path(path).resolve())


def join_uri(root: str, name: str) -> str:
    return f"{absolute_uri(root).rstrip('/')}/{name}"
