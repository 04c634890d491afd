"""Heterogeneous GraphSAGE encoder with per-node-type input layers.

GraphSAGE (Hamilton et al., "Inductive Representation Learning on Large Graphs", 2017):
``h_v' = W_1 h_v + W_2 · mean_{u in N(v)} h_u`` per edge type, summed over the edge types
that end in ``v``'s type (``HeteroConv(aggr="sum")``).

Built as an explicit ``HeteroConv`` of one ``SAGEConv`` per edge type rather than
``to_hetero``: with torch 2.13+ and torch-geometric 2.8.1, ``to_hetero``'s generated module
routes ``edge_index`` by node type and SAGEConv rejects it at the first forward.

Input: every node type has a learnable embedding ``E_t[n_id]`` (``[N_t, embedding_dim]``),
so featureless types (users) need no one-hot identity matrix. Where ``embedding_dim ==
hidden`` (the default) a node's input is ``E_t[n_id] + W_t x + b_t`` (``W_t x + b_t`` only
for types with features): the same functions as a linear layer over ``[E_t[n_id], x]``,
whose embedding half would only re-map a table that is learned anyway, without its matrix
product over every sampled node (about a sixth of a training step's compute at 10M edges).
A checkpoint of that older layout loads as it is (:meth:`HeteroSAGE._fold_input`, exact).
With another ``embedding_dim`` the linear layer over ``[E_t[n_id], x]`` maps to ``hidden``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import HeteroConv, SAGEConv

from graphrec.graph.csr import is_sorted, pointer
from graphrec.models.aggregate import aggregate, layer_sizes

EdgeType = tuple[str, str, str]


class HeteroSAGE(nn.Module):
    """Args:
    num_nodes: node type -> number of nodes (rows of its embedding table).
    feature_dims: node type -> input feature width (types without features omitted).
    edge_types: message-passing edge types (include the reverse ones).
    hidden: width of every layer and of the output.
    embedding_dim: width of the learnable per-node embedding.
    num_layers: message-passing layers (match the sampler's hops).
    dropout, aggr: dropout between layers; SAGE neighbourhood aggregation.
    sparse: sparse gradients for the embedding tables (train them with SparseAdam).

    Shapes: ``forward(x_dict, n_id_dict, edge_index_dict)`` with ``x_dict[t]: [n_t, F_t]``,
    ``n_id_dict[t]: [n_t]`` global ids, ``edge_index_dict[e]: [2, E_e]`` local ids; returns
    ``{t: [n_t, hidden]}``.
    """

    def __init__(
        self,
        num_nodes: dict[str, int],
        feature_dims: dict[str, int],
        edge_types: list[EdgeType],
        hidden: int = 64,
        embedding_dim: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        aggr: str = "mean",
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.embedding = nn.ModuleDict(
            {t: nn.Embedding(n, embedding_dim, sparse=sparse) for t, n in num_nodes.items()}
        )
        for emb in self.embedding.values():
            nn.init.normal_(emb.weight, std=0.1)
        self.feature_dims = dict(feature_dims)
        # embedding_dim == hidden: the embedding is the input, plus a map of the features
        self.direct = embedding_dim == hidden
        if self.direct:
            self.inp = nn.ModuleDict(
                {t: nn.Linear(d, hidden) for t, d in feature_dims.items() if t in num_nodes}
            )
        else:
            self.inp = nn.ModuleDict(
                {t: nn.Linear(embedding_dim + feature_dims.get(t, 0), hidden) for t in num_nodes}
            )
        self.hidden = hidden
        self._register_load_state_dict_pre_hook(self._fold_input)
        self.convs = nn.ModuleList(
            HeteroConv(
                {et: SAGEConv((hidden, hidden), hidden, aggr=aggr) for et in edge_types}, aggr="sum"
            )
            for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.aggr = aggr

    def forward(
        self,
        x_dict: dict[str, Tensor],
        n_id_dict: dict[str, Tensor],
        edge_index_dict: dict[EdgeType, Tensor],
        num_sampled_nodes: dict[str, list[int]] | None = None,
        num_sampled_edges: dict[EdgeType, list[int]] | None = None,
    ) -> dict[str, Tensor]:
        """``num_sampled_nodes``/``num_sampled_edges``: the per-hop counts of a
        neighbour-sampled batch; with them every layer updates only the nodes the next
        one reads (:func:`~graphrec.models.aggregate.layer_sizes`), so the last layer
        returns the seeds alone (the first ``num_sampled_nodes[t][0]`` rows)."""
        h = {t: self._input(t, n_id, x_dict.get(t)) for t, n_id in n_id_dict.items()}
        sizes = layer_sizes(len(self.convs), num_sampled_nodes, num_sampled_edges)
        if sizes and not (set(edge_index_dict) <= set(sizes[0][1])):
            sizes = None  # counts for only some edge types: trim nothing
        for i, conv in enumerate(self.convs):
            if self.aggr in ("mean", "sum"):
                nodes, edges = sizes[i] if sizes else ({}, {})
                out = self._layer(conv, h, edge_index_dict, nodes, edges)
                h = {t: out[t] if t in out else v[: nodes.get(t, len(v))] for t, v in h.items()}
            else:
                out = conv(h, edge_index_dict)
                # A type that receives no message this layer keeps its previous state.
                h = {t: out.get(t, h[t]) for t in h}
            if i < len(self.convs) - 1:
                h = {t: self.dropout(v.relu()) for t, v in h.items()}
        return h

    def _layer(
        self,
        conv: HeteroConv,
        h: dict[str, Tensor],
        edge_index_dict: dict[EdgeType, Tensor],
        nodes: dict[str, int],
        edges: dict[EdgeType, int],
    ) -> dict[str, Tensor]:
        """One ``HeteroConv`` of ``SAGEConv`` s, each as ``lin_l(A @ h_src) + lin_r(h_dst)``
        (:func:`~graphrec.models.aggregate.aggregate`) with the convolution's own
        weights (``SAGEConv`` 's defaults, as ``__init__`` builds them: root weight, no
        normalisation, no projection), for the first ``nodes[t]`` destinations from the
        first ``edges[et]`` edges (all when absent).

        Where the sources are fewer than the destinations, ``lin_l``'s product comes
        first: ``A @ (h_src W_l^T)`` is the same mean (it is linear), over fewer rows (a
        1M-edge ``graphrec bench`` batch's first layer: 4.8k items into 9.4k users). Each
        weight is its own product: no ``[agg | root]`` copy, and no copies of its
        gradient's halves (together 17.5 -> 15.6 ms a training step on 2 cores)."""
        out: dict[str, Tensor] = {}
        for et, ei in edge_index_dict.items():
            if et not in conv.convs:
                continue
            sage = conv.convs[et]
            src, _, dst = et
            n_dst = nodes.get(dst, len(h[dst]))
            if et in edges:
                ei = ei[:, : edges[et]]
            y = _sage(sage, h[src], h[dst][:n_dst], ei, self.aggr)
            out[dst] = y if dst not in out else out[dst] + y
        return out

    def _input(self, t: str, n_id: Tensor, x: Tensor | None) -> Tensor:
        """Layer 0 of node type ``t`` for nodes ``n_id`` with features ``x`` (see the
        module's docstring)."""
        e = _lookup(self.embedding[t], n_id)
        has_x = t in self.feature_dims
        if not self.direct:
            return self.inp[t](torch.cat([e, x], dim=-1) if has_x else e)
        return e + self.inp[t](x) if has_x else e

    def _fold_input(self, state: dict, prefix: str, *args) -> None:
        """Load a checkpoint whose input layer maps ``[E_t[n_id], x]`` (graphrec before
        the direct input): ``E' = E W_e^T + b`` and ``W_x`` kept, the same function."""
        if not self.direct:
            return
        for t, emb in self.embedding.items():
            w_key, b_key = f"{prefix}inp.{t}.weight", f"{prefix}inp.{t}.bias"
            e_key = f"{prefix}embedding.{t}.weight"
            if w_key not in state or state[w_key].shape[1] == self.feature_dims.get(t, -1):
                continue  # already the direct layout
            w, b = state.pop(w_key), state.pop(b_key)
            d = emb.embedding_dim
            state[e_key] = torch.addmm(b, state[e_key], w[:, :d].t())
            if t in self.feature_dims:
                state[w_key], state[b_key] = w[:, d:].contiguous(), torch.zeros_like(b)

    @torch.no_grad()
    def inference(
        self,
        x_dict: dict[str, Tensor],
        num_nodes: dict[str, int],
        edge_index_dict: dict[EdgeType, Tensor],
        batch_nodes: int = 65_536,
        batch_edges: int = 1 << 20,
    ) -> dict[str, Tensor]:
        """``forward`` on the whole graph in eval mode, layer by layer, one batch of
        destination nodes at a time (at most ``batch_nodes`` nodes, and no more incoming
        edges than ``batch_edges`` unless one node alone has more): each layer's messages
        exist for one batch's incoming edges only (``[edges into the batch, hidden]``),
        where ``forward`` materialises them for every edge of a type at once (``[E,
        hidden]``: 25.6 GB for 100M edges at width 64). Memory: two ``[N, hidden]`` layers
        per node type, the sources sorted by destination once per edge type, and one
        batch's messages. Same result as ``forward`` up to float summation order
        (tested)."""
        device = next(self.parameters()).device
        h = {}
        for t, n in num_nodes.items():
            rows = []
            for a in range(0, n, batch_nodes):
                n_id = torch.arange(a, min(a + batch_nodes, n), device=device)
                x = x_dict[t][a : a + batch_nodes].to(device) if t in self.feature_dims else None
                rows.append(self._input(t, n_id, x))
            h[t] = torch.cat(rows) if rows else torch.empty(0, self.hidden, device=device)
        by_dst = {et: _by_destination(ei, num_nodes[et[2]]) for et, ei in edge_index_dict.items()}
        for i, conv in enumerate(self.convs):
            out = {}
            for t, n in num_nodes.items():
                # keys(), not iteration: iterating a PyG ModuleDict yields its string keys
                into = [et for et in conv.convs.keys() if et[2] == t and et in by_dst]
                if not into:
                    continue
                layer = torch.empty(n, h[t].shape[1], device=device, dtype=h[t].dtype)
                for a, b in _batches(sum(by_dst[et][1] for et in into), batch_nodes, batch_edges):
                    acc = None
                    for et in into:
                        src, ptr = by_dst[et]
                        lo, hi = int(ptr[a]), int(ptr[b])
                        # the pointer stays on the CPU (int() of it per batch): the
                        # destinations are made there and moved with the sources
                        dst = torch.repeat_interleave(
                            torch.arange(b - a), ptr[a + 1 : b + 1] - ptr[a:b]
                        ).to(device)
                        local = torch.stack([src[lo:hi].to(device), dst])
                        y = conv.convs[et](
                            (h[et[0]], h[t][a:b]), local, size=(len(h[et[0]]), b - a)
                        )
                        acc = y if acc is None else acc + y
                    layer[a:b] = acc
                out[t] = layer
            h = {t: out.get(t, h[t]) for t in h}
            if i < len(self.convs) - 1:
                h = {t: v.relu() for t, v in h.items()}
        return h


class _Rows(torch.autograd.Function):
    """``weight[index]`` whose gradient is ``zeros_like(weight).index_add_(0, index, grad)``:
    the dense gradient ``nn.Embedding`` gives, without its sort of the indices (a batch's
    12k user rows of a 20k x 64 table on 2 cores: 0.36 ms against 0.6 ms)."""

    @staticmethod
    def forward(ctx, weight: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.shape = weight.shape
        return weight.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.shape).index_add_(0, index, grad)
        return out, None


def _lookup(emb: nn.Embedding, index: Tensor) -> Tensor:
    """``emb(index)``; with dense gradients on a CPU through :class:`_Rows` (a GPU keeps
    ``nn.Embedding``'s deterministic backward: ``index_add_`` there adds atomically)."""
    if (
        emb.sparse or emb.weight.is_cuda or emb.scale_grad_by_freq
        or emb.padding_idx is not None or emb.max_norm is not None
    ):  # fmt: skip  # options whose gradient or values nn.Embedding alone gives
        return emb(index)
    return _Rows.apply(emb.weight, index)


def _batches(ptr: Tensor, batch_nodes: int, batch_edges: int) -> list[tuple[int, int]]:
    """Destination ranges ``[a, b)`` of at most ``batch_nodes`` nodes and ``batch_edges``
    incoming edges (by the cumulative in-degree ``ptr``; a node with more edges alone)."""
    n = len(ptr) - 1
    out, a = [], 0
    while a < n:
        by_edges = int(torch.searchsorted(ptr, ptr[a] + batch_edges, right=True)) - 1
        b = min(a + batch_nodes, max(by_edges, a + 1), n)
        out.append((a, b))
        a = b
    return out


def _sage(sage: SAGEConv, x_src: Tensor, root: Tensor, edge_index: Tensor, aggr: str) -> Tensor:
    """``sage.lin_l(aggregate(x_src)) + sage.lin_r(root)`` for ``len(root)`` destinations,
    ``lin_l`` applied before aggregating where ``x_src`` has fewer rows (see
    ``HeteroSAGE._layer``). ``SAGEConv`` 's defaults: ``lin_l`` has the bias."""
    lin_l, lin_r = sage.lin_l, sage.lin_r
    n = len(root)
    if lin_l.bias is None or lin_r.bias is not None:
        return lin_l(aggregate(x_src, edge_index, n, aggr)) + lin_r(root)
    if len(x_src) < n:
        y = aggregate(x_src @ lin_l.weight.t(), edge_index, n, aggr).add_(lin_l.bias)
    else:
        y = torch.addmm(lin_l.bias, aggregate(x_src, edge_index, n, aggr), lin_l.weight.t())
    return y.addmm_(root, lin_r.weight.t())  # in place: y is no saved tensor


def _by_destination(edge_index: Tensor, num_dst: int) -> tuple[Tensor, Tensor]:
    """``(sources sorted by destination, CSR pointer over destinations)``. A message graph
    is already in that order (CSC): its source row is then used as it is, no sorted copy
    (0.8 GB per edge type at 1e8 edges, and the sort's own buffers)."""
    dst = edge_index[1]
    ptr = pointer(dst, num_dst).cpu()
    if is_sorted(dst):
        return edge_index[0], ptr
    return edge_index[0][torch.argsort(dst, stable=True)], ptr
