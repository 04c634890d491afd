"""The model registry: one entry per model, the one place a model name is decided.

An entry (:class:`ModelSpec`) holds what the rest of the job needs to know about a model,
in the spirit of torchtitan's ``TrainSpec``: how to build it from the graph and the
config, which batches it trains on, which losses it accepts, which optional training
settings it uses, its own config checks, and how it embeds a node it never saw. Every
built model implements :class:`RecommenderModel`.

Adding a model is one file in ``graphrec/models/`` that ends with ``register(ModelSpec(...))``,
its import line in ``graphrec/models/__init__.py``, and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import torch
from torch import Tensor

from graphrec.config import JobConfig
from graphrec.errors import ConfigError

if TYPE_CHECKING:  # types only: the graph stage is upstream, nothing is imported at run time
    from graphrec.graph.hetero import Graph
    from graphrec.graph.split import EdgeSplit

LINK_LOSSES = ("bce", "bpr", "softmax", "multinomial")
RATING_LOSSES = ("mse", "weighted_mse")


class RecommenderModel(Protocol):
    """What training, evaluation and top-k need from every model."""

    @property
    def device(self) -> torch.device: ...

    def forward(self, data, pairs: Tensor, *args) -> Tensor | tuple[Tensor, Tensor]:
        """Scores of ``pairs`` (``[2, B]``; the whole loss comes from one call, as DDP
        needs); models trained on user batches also take ``candidates`` and return
        ``(pair scores, candidate scores)``."""

    def vectors(self, data) -> tuple[Tensor, Tensor]:
        """``(user_vectors [U, D], item_vectors [I, D])``: a score is their inner product."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str
    """``model.name``."""
    build: Callable[[Graph, EdgeSplit, JobConfig], RecommenderModel]
    """The model for a graph, its training split (e.g. the mean rating) and the config."""
    batches: Literal["neighbor", "user", "closed_form", "episodes"]
    """neighbor: ``LinkNeighborLoader`` subgraphs around labelled edges; user: per-user
    batches (BPR triplets, sampled-softmax positives or whole users) on the full graph;
    closed_form: no batches, fit once per value of its one setting (chosen on validation);
    episodes: reinforcement learning on each user's sequence (:mod:`graphrec.train.episodes`)."""
    losses: tuple[str, ...]
    """The ``train.loss`` values it trains with (closed-form and episode models: none, and
    any ``train.loss`` is ignored)."""
    options: tuple[str, ...] = ()
    """Optional ``train.*`` settings it uses (``hard_negatives``, ``low_label_weight``,
    ``disjoint_ratio``)."""
    check: Callable[[JobConfig], None] | None = None
    """Its own config checks (raise :class:`ConfigError`)."""
    embed_new: Callable | None = None
    """``embed_new(model, state, nodes, data)``: load the trained ``state`` into ``model``
    (built for a later graph) with each known node's rows moved to its new position and
    every new node embedded by the model's rule, no gradient step
    (:mod:`graphrec.models.inductive`; ``nodes``: a ``NewNodes``, ``data``: the later
    graph's full message graph). None: the model cannot embed new nodes."""
    new_items: bool = True
    """Whether it can score an item it never saw (False: new items are left out of its
    rankings until it is retrained; new users are scored either way)."""


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (once per name)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    MODELS[spec.name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    """The registered model ``name``, or a one-line error listing the names."""
    if name not in MODELS:
        raise ConfigError(f"model.name={name!r} is not a model (have: {', '.join(sorted(MODELS))})")
    return MODELS[name]


def check_model(cfg: JobConfig) -> ModelSpec:
    """Every model-specific check of ``cfg``, before any work: a known name, a loss the
    model trains with, optional settings only where the model uses them, its own checks."""
    spec = model_spec(cfg.model.name)
    if spec.check is not None:
        spec.check(cfg)
    t = cfg.train
    if spec.batches not in ("closed_form", "episodes") and t.loss not in spec.losses:
        others = [m.name for m in MODELS.values() if t.loss in m.losses]
        raise ConfigError(
            f"train.loss={t.loss} is not a loss of model.name={spec.name} (its losses: "
            f"{', '.join(spec.losses)}); train.loss={t.loss} needs model.name="
            f"{' or '.join(others)}"
        )
    if t.hard_negatives and ("hard_negatives" not in spec.options or t.loss not in ("bpr", "bce")):
        users = " or ".join(m.name for m in MODELS.values() if "hard_negatives" in m.options)
        raise ConfigError(f"train.hard_negatives needs model.name={users} and loss bpr or bce")
    labelled = cfg.build.label is not None  # without a label every edge weighs 1 anyway
    if t.low_label_weight != 1.0 and labelled and "low_label_weight" not in spec.options:
        if t.loss != "multinomial":
            users = " or ".join(m.name for m in MODELS.values() if "low_label_weight" in m.options)
            raise ConfigError(
                "train.low_label_weight weights the multinomial loss and the propagation of "
                f"model.name={users}: set one of them or train.loss=multinomial"
            )
    if cfg.model.blend != "none" and t.objective != "link":
        raise ConfigError(
            f"model.blend={cfg.model.blend} blends rankers (train.objective=link); a rating "
            "model is not blended: set model.blend=none"
        )
    if cfg.sampler.temporal:
        if cfg.build.timestamp is None:
            raise ConfigError("sampler.temporal needs build.timestamp (the edges' times)")
        if spec.batches != "neighbor":
            users = " or ".join(m.name for m in MODELS.values() if m.batches == "neighbor")
            raise ConfigError(
                f"sampler.temporal: model.name={spec.name} is not neighbour-sampled (it "
                f"trains on {spec.batches} batches); it is for model.name={users}"
            )
    if t.disjoint_ratio > 0 and "disjoint_ratio" not in spec.options:
        raise ConfigError(f"model.name={spec.name}: train.disjoint_ratio must be 0")
    return spec


def build(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> RecommenderModel:
    """The configured model for ``graph``, after :func:`check_model`."""
    return check_model(cfg).build(graph, split, cfg)


def num_layers(cfg: JobConfig) -> int:
    """``model.layers``, or one per ``sampler.num_neighbors`` hop."""
    return cfg.model.layers or len(cfg.sampler.num_neighbors)


def ranks_items(cfg: JobConfig) -> None:
    """The check of models that only rank: they need ``train.objective=link``."""
    if cfg.train.objective != "link":
        raise ConfigError(
            f"model.name={cfg.model.name} ranks items: set train.objective=link "
            "(train.loss=bpr or bce)"
        )
