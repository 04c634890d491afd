"""pytest plugin (``-p graphrec_pyg_plugin``) that runs PyTorch Geometric's own loader and
sampler tests with graphrec's sampler in place of PyG's compiled ones.

Loaded before PyG's test modules are imported, it changes exactly two things: every
``NeighborSampler`` the loaders (and the tests) build is :class:`GraphRecNeighborSampler`,
and the gates that ask for a compiled sampler are open: ``onlyNeighborSampler``,
``withPackage('pyg_lib')``, the weighted / edge-time flags, and ``WITH_PYG_LIB`` (several
tests return early without it, e.g. for int32 indices; with it they run to the end, and
anything else in PyG that then reached for pyg-lib's kernels would fail, not pass).
torch-sparse stays absent, so the tests that need it (induced subgraphs, the torch-sparse
equality checks) still skip or return early. Nothing in PyG's tests is changed.
"""

from __future__ import annotations

import torch_geometric.loader.link_neighbor_loader as link_loader
import torch_geometric.loader.neighbor_loader as node_loader
import torch_geometric.sampler as sampler_pkg
import torch_geometric.sampler.neighbor_sampler as sampler_mod
import torch_geometric.testing as testing
import torch_geometric.testing.decorators as decorators
import torch_geometric.typing as pyg_typing

from graphrec.samplers import GraphRecNeighborSampler

for module in (node_loader, link_loader, sampler_pkg, sampler_mod):
    module.NeighborSampler = GraphRecNeighborSampler

pyg_typing.WITH_PYG_LIB = True
pyg_typing.WITH_WEIGHTED_NEIGHBOR_SAMPLE = True
pyg_typing.WITH_EDGE_TIME_NEIGHBOR_SAMPLE = True

_has_package = decorators.has_package


def _has_package_or_sampler(package: str) -> bool:
    """``pyg_lib`` counts as present: graphrec's sampler stands in for it."""
    names = [p for p in package.split("|") if not p.startswith("pyg_lib")]
    if len(names) < len(package.split("|")):
        return True
    return _has_package(package)


def _only_neighbor_sampler(func):
    return func


decorators.has_package = _has_package_or_sampler
decorators.onlyNeighborSampler = _only_neighbor_sampler
testing.onlyNeighborSampler = _only_neighbor_sampler
