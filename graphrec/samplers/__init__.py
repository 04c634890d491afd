"""Samplers, apart from loaders: they decide which neighbours a mini-batch sees."""

from graphrec.samplers.neighbor import (
    GraphRecNeighborSampler,
    compiled_sampler_available,
    make_neighbor_sampler,
    sample_adjacent,
)

__all__ = [
    "GraphRecNeighborSampler",
    "compiled_sampler_available",
    "make_neighbor_sampler",
    "sample_adjacent",
]
