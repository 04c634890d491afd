"""Neighbourhood aggregation without per-edge message tensors, and per-layer trimming of
a neighbour-sampled batch.

``SAGEConv.propagate`` with ``aggr="mean"`` gathers a ``[E, H]`` message per edge
(``index_select``) and scatters it onto the destinations (``scatter_add`` + a degree
count); its backward gathers and scatters again. :func:`aggregate` computes the same mean
(or sum) by one of three kernels:

- ``bag`` (the CPU's, ``kernel="auto"``): the destinations' incoming edges as the bags of
  an ``embedding_bag`` (one fused gather-and-reduce per destination, no message tensor);
  the gradient is the transposed reduction, again one ``embedding_bag``: per source, the
  sum of its destinations' gradients weighted by ``1/deg``. On this project's 2-core
  machines, the two edge types of a 1M-edge ``graphrec bench`` batch (27k and 57k edges,
  width 64), forward and backward each: 1.1 and 1.6 ms against 1.8 and 2.2 ms for
  ``csr`` and 3.8 and 6.0 ms for ``messages`` (before the bags' ``mode="sum"``).
- ``csr``: ``A @ x`` with ``A`` the ``[N_dst, N_src]`` CSR adjacency whose row ``v``
  holds ``1/deg(v)``; the backward ``Aᵀ @ grad``, ``Aᵀ`` built only when a gradient is
  needed.
- ``messages`` (a GPU's, ``kernel="auto"``): PyG's gather and an atomic ``index_add_``,
  queued without a host wait, where the CSR product's sorts and degree counts stop the
  host at every call (``bincount`` and a key's maximum are read back). On an H200 a
  1M-edge training step's compute took 9.4 ms through the CSR product, against PyG's
  recipe's 6.0 ms (``bench/results/gpu-20261204-h200/``).

:func:`layer_sizes` is PyG's ``trim_to_layer`` for a hop-ordered sample (seeds first,
then each hop's new nodes; each hop's edges after the previous hop's, as both graphrec's
sampler and PyG's compiled ones return them): layer ``i`` of ``L`` only needs to update
the nodes within ``L - 1 - i`` hops of the seeds, from the edges of those hops. With
fan-out [10, 5] the last layer reads about a sixth of the sampled edges.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from graphrec.graph.csr import argsort_ids, is_sorted, pointer


class _AdjacencyProduct(torch.autograd.Function):
    """``adj @ x`` with the gradient ``adj_t @ grad`` (``adj_t`` given, not derived)."""

    @staticmethod
    def forward(ctx, x: Tensor, adj: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.adj_t @ grad.contiguous(), None, None


def _csr(counts: Tensor, other: Tensor, values: Tensor, cols: int) -> Tensor:
    """CSR ``[len(counts), cols]`` from entries sorted by row, ``counts[r]`` in row ``r``."""
    rows = len(counts)
    crow = torch.zeros(rows + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=crow[1:])
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, other, values, (rows, cols), check_invariants=False)


def _order(index: Tensor, bound: int, minor: Tensor | None = None) -> Tensor:
    """Stable argsort of node ids below ``bound``; with ``minor``, by ``(index, minor)``."""
    if minor is not None:  # sorted, distinct-where-possible columns per row (cuSPARSE)
        return torch.argsort(index * (int(minor.max()) + 1) + minor, stable=True)
    return argsort_ids(index, bound)


KERNELS = ("auto", "bag", "csr", "messages")
"""``aggregate``'s kernels (the module's docstring): ``bag`` (``embedding_bag`` both
ways), ``csr`` (the sparse product), ``messages`` (gather, then ``index_add_``), ``auto``
(``messages`` on a GPU, ``bag`` elsewhere)."""


class _Bags(torch.autograd.Function):
    """Per destination, the mean (or sum) of ``x``'s rows over its incoming edges, as an
    ``embedding_bag`` over edges sorted by destination; the gradient by the transposed
    bags (edges sorted by source), weighted by each destination's ``1/deg`` for a mean.
    Both are ``mode="sum"`` bags (FBGEMM's kernel; ``mode="mean"`` ran at half its speed
    here), the mean a product with ``1/deg`` afterwards."""

    @staticmethod
    def forward(ctx, x: Tensor, src: Tensor, dst: Tensor, num_dst: int, mean: bool) -> Tensor:
        ptr = pointer(dst, num_dst)
        out = F.embedding_bag(src, x, ptr, mode="sum", include_last_offset=True)
        scale = ptr.diff().clamp_(min=1).to(x.dtype).reciprocal_() if mean else None
        if mean:
            out.mul_(scale.unsqueeze(1))
        ctx.save_for_backward(src, dst, scale)
        ctx.num_src = len(x)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        src, dst, scale = ctx.saved_tensors
        order = argsort_ids(src, ctx.num_src)
        into = dst.index_select(0, order)
        weight = None if scale is None else scale.index_select(0, into)
        ptr = pointer(src, ctx.num_src)
        g = F.embedding_bag(
            into, grad.contiguous(), ptr, mode="sum", per_sample_weights=weight,
            include_last_offset=True,
        )  # fmt: skip
        return g, None, None, None, None


def aggregate(
    x_src: Tensor, edge_index: Tensor, num_dst: int, aggr: str = "mean", kernel: str = "auto"
) -> Tensor:
    """``[num_dst, H]``: per destination, the mean (``aggr="mean"``) or sum (``"sum"``)
    of ``x_src`` over its incoming edges (``edge_index``: ``[2, E]`` source, destination
    local ids); 0 where none. The same result as ``SAGEConv``'s propagation up to float
    summation order, by either kernel (``KERNELS``)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r}: one of {', '.join(KERNELS)}")
    src, dst = edge_index[0], edge_index[1]
    if len(dst) == 0 or len(x_src) == 0:
        return x_src.new_zeros(num_dst, x_src.shape[1])
    if kernel == "messages" or (kernel == "auto" and x_src.is_cuda):
        return _messages(x_src, src, dst, num_dst, aggr)
    if kernel in ("auto", "bag"):
        if not is_sorted(dst):
            order = argsort_ids(dst, num_dst)
            src, dst = src.index_select(0, order), dst.index_select(0, order)
        return _Bags.apply(x_src, src, dst, num_dst, aggr == "mean")
    cuda = x_src.is_cuda  # cuSPARSE: columns sorted within each row
    if cuda or not is_sorted(dst):
        order = _order(dst, num_dst, src if cuda else None)
        src, dst = src.index_select(0, order), dst.index_select(0, order)
    deg = torch.bincount(dst, minlength=num_dst)
    if aggr == "mean":
        values = deg.clamp(min=1).to(x_src.dtype).reciprocal_().index_select(0, dst)
    else:
        values = torch.ones(len(dst), dtype=x_src.dtype, device=x_src.device)
    adj = _csr(deg, src, values, len(x_src))
    if not (torch.is_grad_enabled() and x_src.requires_grad):
        return adj @ x_src
    order = _order(src, len(x_src), dst if cuda else None)
    pick = functools.partial(torch.index_select, dim=0, index=order)
    adj_t = _csr(torch.bincount(src, minlength=len(x_src)), pick(dst), pick(values), num_dst)
    return _AdjacencyProduct.apply(x_src, adj, adj_t)


def _messages(x_src: Tensor, src: Tensor, dst: Tensor, num_dst: int, aggr: str) -> Tensor:
    """``aggregate`` as PyG propagates: a ``[E, H]`` message per edge, summed onto the
    destinations (divided by their in-degree for the mean); autograd's backward gathers
    and scatters back. Nothing here waits for the device."""
    out = x_src.new_zeros(num_dst, x_src.shape[1])
    out.index_add_(0, dst, x_src.index_select(0, src))
    if aggr != "mean":
        return out
    deg = x_src.new_zeros(num_dst).index_add_(0, dst, x_src.new_ones(len(dst)))
    return out / deg.clamp_(min=1).unsqueeze(1)


def layer_sizes(
    num_layers: int,
    num_sampled_nodes: dict[str, list[int]] | None,
    num_sampled_edges: dict[tuple, list[int]] | None,
) -> list[tuple[dict[str, int], dict[tuple, int]]] | None:
    """Per layer, ``(nodes of each type it updates, edges of each type it reads)`` as
    prefix lengths of a hop-ordered sample; ``None`` (use everything) unless the sample
    has exactly ``num_layers`` hops for every type."""
    if not num_sampled_nodes or not num_sampled_edges:
        return None
    if any(len(v) != num_layers + 1 for v in num_sampled_nodes.values()) or any(
        len(v) != num_layers for v in num_sampled_edges.values()
    ):
        return None
    return [
        (
            {t: int(sum(v[: num_layers - i])) for t, v in num_sampled_nodes.items()},
            {et: int(sum(v[: num_layers - i])) for et, v in num_sampled_edges.items()},
        )
        for i in range(num_layers)
    ]
