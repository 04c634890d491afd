"""Training contexts for Ray Train workers and Ray Tune trials.

They subclass :class:`graphrec.train.context.TrainContext`, so the training loop is the
same function everywhere; only rank, collectives, model wrapping and checkpoint storage
change. Ray Train owns the process group (gloo on CPU, NCCL on GPU) and the checkpoint
storage (``RunConfig.storage_path``); a restarted worker group gets the latest reported
checkpoint from ``ray.train.get_checkpoint()``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import ray.train
import ray.train.torch
import ray.tune
import torch
import torch.distributed as dist
from torch import Tensor, nn

from graphrec.config import JobConfig
from graphrec.train.context import CHECKPOINT_PREFIX, TrainContext, load_train_state

_OPS = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}


class RayTrainContext(TrainContext):
    """One worker of a Ray Train ``TorchTrainer`` (DDP over ``world_size`` workers)."""

    owns_run = False  # the driver opened the run (graphrec.distributed.trainer.fit)

    def __init__(self, cfg: JobConfig) -> None:
        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        # Ray sets OMP_NUM_THREADS=1 in workers: give torch the CPUs this worker reserved
        torch.set_num_threads(cfg.distributed.cpus_per_worker)
        device = ray.train.torch.get_device() if cfg.distributed.use_gpu else torch.device("cpu")
        super().__init__(cfg, device)
        self.run_uri = None  # Ray Train stores the checkpoints

    def _collective(self, t: Tensor) -> Tensor:
        # NCCL reduces tensors on the GPU, gloo on the CPU
        return t.to(self.device) if dist.get_backend() == "nccl" else t

    def all_reduce(self, t: Tensor, op: str = "sum") -> Tensor:
        out = self._collective(t.clone())
        dist.all_reduce(out, op=_OPS[op])
        return out.cpu()

    def all_gather(self, values: list[float]) -> list[list[float]]:
        mine = self._collective(torch.tensor(values, dtype=torch.float64))
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine)
        return [p.cpu().tolist() for p in parts]

    def prepare_model(self, model: nn.Module) -> nn.Module:
        # Per-edge-type layers whose output does not reach the loss (e.g. the last layer's
        # messages into genre nodes) get no gradient: DDP must be told to expect that.
        return ray.train.torch.prepare_model(
            model,
            move_to_device=self.device,
            parallel_strategy_kwargs={"find_unused_parameters": True},
        )

    @contextlib.contextmanager
    def restored(self) -> Iterator[dict | None]:
        ckpt = ray.train.get_checkpoint()
        if ckpt is None:
            yield None
            return
        with ckpt.as_directory() as folder:
            yield load_train_state(Path(folder))

    def report(self, metrics: dict, epoch: int, write: Callable[[Path], None] | None) -> None:
        if write is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="graphrec-ckpt-") as tmp:
            write(Path(tmp))
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(tmp),
                checkpoint_dir_name=f"{CHECKPOINT_PREFIX}{epoch:06d}",
            )


class TuneContext(TrainContext):
    """One Ray Tune trial: a single process that reports every epoch to the scheduler.

    Trials keep no checkpoints (ASHA stops trials, it does not resume them); the chosen
    configuration is then trained for real with ``graphrec run``.
    """

    owns_run = False

    def __init__(self, cfg: JobConfig) -> None:
        torch.set_num_threads(cfg.tune.cpus_per_trial)
        super().__init__(cfg, torch.device("cpu"))
        self.run_uri = None

    def report(self, metrics: dict, epoch: int, write: Callable[[Path], None] | None) -> None:
        ray.tune.report(metrics)
