"""``mode: final`` in one command: choose on an inner validation split, then refit on
every edge.

With ``final_validation`` on (the default) and ``build.split.val > 0``, a final run first
holds out ``build.split.val`` of the target edges (the ``build.split.kind`` split, no test
part), trains on the rest exactly as an evaluate run would (epochs by early stopping, every
``auto`` setting and the blend weight on validation), then fixes those choices in the
config and trains again on every edge. The refit costs one more training; the choices and
the validation metric they reached are in ``metrics.json`` (``chosen_on_validation``), and
the config written there is the refit's, with the chosen values in it.
"""

from __future__ import annotations

import dataclasses

from graphrec.config import JobConfig
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit, split_target
from graphrec.models.registry import model_spec


def validation_split(cfg: JobConfig, graph: Graph) -> EdgeSplit:
    """``build.split`` without its test part: train and validation edges only."""
    return split_target(dataclasses.replace(cfg.build.split, test=0.0), graph)


def choice_config(cfg: JobConfig) -> JobConfig:
    """The config of the choosing run: its checkpoints under a run id of their own, never
    resumed (``--resume`` applies to the refit)."""
    t = cfg.train
    run_id = f"{t.run_id}.choose" if t.run_id else None
    return dataclasses.replace(
        cfg, mode="evaluate", train=dataclasses.replace(t, run_id=run_id, resume=False)
    )


def _fix(model_cfg, model_name: str, setting: str, value: float):
    own = getattr(model_cfg, model_name)
    own = dataclasses.replace(own, **{setting: value})
    return dataclasses.replace(model_cfg, **{model_name: own})


def apply_choices(cfg: JobConfig, result) -> tuple[JobConfig, dict]:
    """``cfg`` with what the choosing run (its ``TrainResult``) chose fixed in it, and those
    choices as ``{config key: value}`` plus the validation metric they reached."""
    chosen: dict = {}
    model, train = cfg.model, cfg.train
    if model_spec(model.name).batches == "closed_form":
        ((setting, value),) = result.stats["chosen"].items()
        model = _fix(model, model.name, setting, value)
        chosen[f"model.{cfg.model.name}.{setting}"] = value
    else:
        train = dataclasses.replace(train, epochs=max(result.best_epoch, 1))
        chosen["train.epochs"] = train.epochs
    blend = result.stats.get("blend")
    if blend and blend["weight"] == 0.0:  # the trained model alone won: no partner to refit
        model = dataclasses.replace(model, blend="none")
        chosen["model.blend"] = "none"
    elif blend:
        partner = blend["partner"]
        ((setting, value),) = blend["partner_setting"].items()
        model = _fix(model, partner, setting, value)
        model = dataclasses.replace(model, blend=partner, blend_weight=blend["weight"])
        chosen.update({
            "model.blend": partner,
            "model.blend_weight": blend["weight"],
            f"model.{partner}.{setting}": value,
        })  # fmt: skip
    if result.val_metric:
        chosen[result.val_metric] = result.best_val
    return dataclasses.replace(cfg, model=model, train=train), chosen
