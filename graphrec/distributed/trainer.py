"""Data-parallel training on Ray Train: ``TorchTrainer`` running
:func:`graphrec.train.loop.train_loop_per_worker` on N workers.

* The graph goes into the object store once (:mod:`graphrec.distributed.shared`).
* Each worker trains on its shard of the training edges with DDP (gloo on CPU, NCCL on
  GPU) and reports every epoch; rank 0 attaches a checkpoint (model, best model, optimizer,
  RNG states, history, config, id maps) that Ray Train stores under
  ``train.checkpoint_path/<run_id>/checkpoint_epoch_NNNNNN`` (a folder or any pyarrow
  filesystem URI, e.g. ``s3://bucket/prefix``).
* ``FailureConfig(max_failures)``: when a worker dies, Ray Train restarts the worker group
  and the loop continues from the latest checkpoint. ``train.resume`` (``--resume``)
  continues a stopped run from its latest checkpoint.

The driver only builds the final model from the last checkpoint's best weights.
"""

from __future__ import annotations

import logging
import os

import pyarrow.fs as pafs
import ray
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from graphrec.config import JobConfig
from graphrec.distributed.context import RayTrainContext
from graphrec.distributed.shared import put_inputs
from graphrec.errors import ConfigError, GraphRecError, RunError
from graphrec.models.recommender import Recommender
from graphrec.train.batches import TrainInputs
from graphrec.train.context import (
    absolute_uri,
    claim_run,
    join_uri,
    lock_run,
    newest_checkpoint,
    open_run,
    resolve_run_id,
)
from graphrec.train.loop import TrainResult, new_model, train_loop_per_worker
from graphrec.train.stats import summarize


def init_ray(address: str | None, quiet: bool = True) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``), or start a local cluster for this process."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = {"include_dashboard": False} if address is None else {}
    ray.init(
        address=address,
        logging_level=logging.WARNING if quiet else logging.INFO,
        log_to_driver=not quiet,
        **kwargs,
    )


def fit(
    inputs: TrainInputs, cfg: JobConfig, progress: bool = True
) -> tuple[Recommender, TrainResult]:
    """Train on ``cfg.distributed.workers`` Ray Train workers; the best model and its history."""
    d, t = cfg.distributed, cfg.train
    init_ray(d.address, quiet=not progress)
    storage = absolute_uri(t.checkpoint_path)
    run_id = resolve_run_id(cfg)
    run_uri = join_uri(storage, run_id)
    open_run(cfg, run_uri)
    if t.resume and newest_checkpoint(run_uri) is None:
        raise ConfigError(f"train.resume: no checkpoint under {storage}/{run_id}")
    claim_run(cfg, *pafs.FileSystem.from_uri(run_uri))
    lock = lock_run(run_uri, run_id)
    try:
        return _fit(inputs, cfg, progress, storage, run_id, run_uri)
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)


def _fit(
    inputs: TrainInputs, cfg: JobConfig, progress: bool, storage: str, run_id: str, run_uri: str
) -> tuple[Recommender, TrainResult]:
    """``fit`` once the run is opened, claimed and locked."""
    d, t = cfg.distributed, cfg.train
    # Ray Train restores a run from its storage folder when the run name is reused, so
    # resuming is starting the same run_id again; a new run gets a new run_id.
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "cfg": cfg,
            "inputs": put_inputs(inputs),
            "context": RayTrainContext,
            "progress": progress,
        },
        torch_config=TorchConfig(backend="nccl" if d.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=d.workers,
            use_gpu=d.use_gpu,
            resources_per_worker={"CPU": d.cpus_per_worker},
        ),
        run_config=RunConfig(
            name=run_id,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=d.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=t.keep_checkpoints),
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        where = ""
        if newest_checkpoint(run_uri) is not None:
            where = (
                f"; checkpoints are in {storage}/{run_id} (continue with --resume "
                f"train.run_id={run_id})"
            )
        cause = _graphrec_error(exc)
        if cause is not None:  # a worker's own one-line error (a diverged loss, a full disk)
            raise type(cause)(f"{cause}{where}") from None
        text = " ".join(str(exc).split())
        raise RunError(
            f"distributed training failed after {d.max_failures} restart(s): "
            f"{text[:300]}{' ...' if len(text) > 300 else ''}{where}"
        ) from None
    if result.checkpoint is None:
        raise GraphRecError(f"distributed training reported no checkpoint ({storage}/{run_id})")
    with result.checkpoint.as_directory() as folder:
        state = torch.load(f"{folder}/train_state.pt", map_location="cpu", weights_only=False)
    model = new_model(inputs.graph, inputs.split, cfg)
    model.load_state_dict(state["best_model"] or state["model"])
    out = TrainResult(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_val=state["best_val"],
        val_metric=state["val_metric"],
    )
    out.stats = summarize(out.history, d.workers)
    out.stats.update(
        best_epoch=out.best_epoch,
        restored_from_epochs=state["restores"],
        run_id=run_id,
        checkpoint=result.checkpoint.path,
        device="cuda" if d.use_gpu else "cpu",
    )
    return model, out


def _graphrec_error(exc: BaseException) -> GraphRecError | None:
    """The :class:`GraphRecError` a worker raised, from Ray's failure report (Ray wraps it in
    a ``RayTaskError`` that keeps it as ``cause``)."""
    for failure in getattr(exc, "worker_failures", {}).values():
        seen = failure
        while seen is not None:
            inner = getattr(seen, "cause", None) or seen.__cause__
            if isinstance(seen, GraphRecError) and not isinstance(inner, GraphRecError):
                return seen if type(seen).__module__.startswith("graphrec.") else None
            seen = inner
    return None


def _train_worker(config: dict) -> None:
    """What each Ray Train worker runs: the single-process training function. The trained
    model leaves through the checkpoints (Ray does not pass tensors back)."""
    train_loop_per_worker(config)
