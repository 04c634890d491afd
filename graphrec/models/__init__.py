"""Stage 3, the models (plain PyTorch/PyG; never imports Ray), one file each, and their
registry (:mod:`graphrec.models.registry`): importing this package registers every model.
A new model is one file here ending in ``register(ModelSpec(...))`` plus its line below.
"""

from graphrec.models import (  # noqa: F401  (registers them)
    dqn,
    ease,
    gfcf,
    lightgcn,
    pinsage,
    popularity,
    recommender,
)
from graphrec.models.decoders import DotDecoder
from graphrec.models.recommender import Recommender, build_model
from graphrec.models.registry import (
    MODELS,
    ModelSpec,
    RecommenderModel,
    check_model,
    model_spec,
    register,
)
from graphrec.models.sage import HeteroSAGE

__all__ = [
    "MODELS",
    "DotDecoder",
    "HeteroSAGE",
    "ModelSpec",
    "Recommender",
    "RecommenderModel",
    "build_model",
    "check_model",
    "model_spec",
    "register",
]
