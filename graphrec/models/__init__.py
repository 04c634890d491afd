"""Encoders and decoders (plain PyTorch/PyG; never imports Ray)."""

from graphrec.models.decoders import DotDecoder
from graphrec.models.recommender import Recommender, build_model
from graphrec.models.sage import HeteroSAGE

__all__ = ["DotDecoder", "HeteroSAGE", "Recommender", "build_model"]
