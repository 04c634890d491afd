"""Stage 3, train: what a worker trains on. Neighbour-sampled ``LinkNeighborLoader``
mini-batches over target edges (SAGE), per-user batches for full-graph models, the
worker's shard of the training edges, and the inputs every worker receives.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling

from graphrec.config import JobConfig
from graphrec.errors import PENDING, raise_if_interrupted, signals_deferred
from graphrec.graph.hetero import Graph, label_weights, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.samplers.neighbor import make_neighbor_sampler
from graphrec.samplers.users import UserSampler
from graphrec.train.context import TrainContext


def make_loader(
    data: HeteroData,
    graph: Graph,
    edges: Tensor | None,
    cfg: JobConfig,
    shuffle: bool = True,
    batch_size: int | None = None,
) -> LinkNeighborLoader:
    """Mini-batches over target edges ``edges`` (indices into the target edge list), or
    with ``edges=None`` over the target edges of ``data`` itself (the training edges of a
    :func:`message_graph`: no copy of the edge list and its labels, 1.6 + 0.4 GB at 1e8).

    ``data`` must come from :func:`message_graph` (edges in CSC order). An epoch's order is
    one permutation drawn from torch's global generator, as ``shuffle=True`` draws it, but
    handed out a chunk at a time (:class:`EpochOrder`).
    """
    t = cfg.train
    if edges is None:
        store = data[graph.target]
        supervised = store.edge_index
        label = store.label if t.objective == "rating" else None
    else:
        supervised = graph.target_index[:, edges]
        label = graph.label[edges] if t.objective == "rating" else None
    neg = None
    if t.objective == "link":
        mode = "triplet" if t.loss == "bpr" else "binary"
        neg = NegativeSampling(mode, amount=t.num_negatives)
    temporal = {}
    if cfg.sampler.temporal:  # each edge sees only edges strictly older than itself
        when = store.time if edges is None else graph.time[edges]
        temporal = {"time_attr": "time", "edge_label_time": when - 1}
    sampler = make_neighbor_sampler(
        data, cfg.sampler.num_neighbors, cfg.sampler.backend,
        is_sorted=not temporal,  # temporal: PyG sorts each node's edges by time
        time_attr=temporal.get("time_attr"),
    )  # fmt: skip
    loader = LinkNeighborLoader(
        data,
        num_neighbors=cfg.sampler.num_neighbors,
        edge_label_index=(graph.target, supervised),
        edge_label=label,
        neg_sampling=neg,
        **temporal,
        batch_size=batch_size or cfg.sampler.batch_size,
        sampler=EpochOrder(supervised.shape[1]) if shuffle else None,
        num_workers=cfg.sampler.num_workers,
        worker_init_fn=ignore_signals if cfg.sampler.num_workers else None,
        neighbor_sampler=sampler,
    )
    # PyG's EdgeSamplerInput clones both rows (1.6 GB at 1e8 edges, for the whole run);
    # nothing writes to them, so the loader reads the edges it was given instead
    loader.input_data.row, loader.input_data.col = supervised[0], supervised[1]
    return loader


class EpochOrder(torch.utils.data.Sampler):
    """A random order of ``range(n)`` per epoch: ``RandomSampler``'s, without its list.

    torch's ``RandomSampler`` turns the epoch's permutation into one Python list
    (``randperm(n).tolist()``: about 36 bytes per edge, 3.6 GB for 100M training edges);
    this one draws the same permutation from the same seed (taken from torch's global
    generator, so ``torch.manual_seed`` and a checkpoint's RNG state decide it as before),
    holds it as int32 where ``n`` allows and hands it out 64k indices at a time."""

    CHUNK = 1 << 16

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        gen = torch.Generator().manual_seed(seed)
        dtype = torch.int32 if self.n < 2**31 else torch.int64
        perm = torch.randperm(self.n, generator=gen, dtype=dtype)
        for chunk in perm.split(self.CHUNK):
            yield from chunk.tolist()


@dataclass
class TrainInputs:
    """What a training worker needs: the graph, the split and the training message graph."""

    graph: Graph
    split: EdgeSplit
    data: HeteroData
    """``message_graph(graph, split.train)``: the only edges a training batch can see."""

    @classmethod
    def of(cls, graph: Graph, split: EdgeSplit, cfg: JobConfig) -> TrainInputs:
        data = message_graph(graph, split.train, cfg.build.reverse_edges, cfg.sampler.temporal)
        return cls(graph, split, data)


def disjoint_loader(
    graph: Graph, train: Tensor, cfg: JobConfig, gen: torch.Generator, batch_size: int | None = None
) -> LinkNeighborLoader:
    """A loader whose supervision edges are not in its message-passing graph.

    A fresh random ``train.disjoint_ratio`` share of the training edges is supervised this
    epoch and the rest carry messages, so the model cannot score an edge by finding it in
    its own neighbourhood (PyG's ``RandomLinkSplit(disjoint_train_ratio=...)``, redrawn
    every epoch so every edge is supervised over the run).
    """
    perm = train[torch.randperm(len(train), generator=gen)]
    n_sup = max(1, round(len(train) * cfg.train.disjoint_ratio))
    sup, msg = perm[:n_sup].sort().values, perm[n_sup:].sort().values
    data = message_graph(graph, msg, cfg.build.reverse_edges, cfg.sampler.temporal)
    return make_loader(data, graph, sup, cfg, batch_size=batch_size)


def shard(edges: Tensor, rank: int, world_size: int, seed: int) -> Tensor:
    """Worker ``rank``'s equal share of ``edges`` (a seeded permutation cut into
    ``world_size`` parts; the ``< world_size`` left over are dropped so that every worker
    runs the same number of batches, as DDP requires)."""
    if world_size == 1:
        return edges
    perm = edges[torch.randperm(len(edges), generator=torch.Generator().manual_seed(seed))]
    per = len(edges) // world_size
    return perm[rank * per : (rank + 1) * per].sort().values


def worker_edges(graph: Graph, split: EdgeSplit, cfg: JobConfig, ctx: TrainContext) -> Tensor:
    """This worker's training edges: its :func:`shard`, or for user batches
    (``multinomial``) the edges of the users ``rank::world_size``."""
    if cfg.train.loss == "multinomial" and ctx.world_size > 1:
        return split.train[graph.target_index[0, split.train] % ctx.world_size == ctx.rank]
    return shard(split.train, ctx.rank, ctx.world_size, cfg.train.seed)


def user_loader(
    model: nn.Module,
    graph: Graph,
    mine: Tensor,
    cfg: JobConfig,
    eval_data: HeteroData,
    gen: torch.Generator,
    batch_size: int,
) -> UserSampler:
    """Per-user batches for full-graph and random-walk models (LightGCN, PinSage): BPR
    triplets, sampled-softmax positives, or whole users (multinomial)."""
    t = cfg.train
    ei = graph.target_index[:, mine]
    n_users, n_items = graph.num_nodes[graph.user_type], graph.num_nodes[graph.item_type]
    # softmax draws its shared negatives per step, multinomial ranks the whole catalogue
    negatives = 0 if t.loss in ("softmax", "multinomial") else t.num_negatives
    hard = t.hard_negatives > 0  # PinSage: negatives near the positive item
    weights = None
    if t.low_label_weight != 1.0 and graph.label is not None:
        thr = cfg.evaluate.positive_threshold
        weights = label_weights(graph.label[mine], t.low_label_weight, thr)
    return UserSampler(
        ei[0], ei[1], n_users, n_items, batch_size, negatives, eval_data, gen,
        users_only=t.loss == "multinomial",
        hard_table=model.neighbourhoods(eval_data)[0].cpu() if hard else None,
        hard_share=t.hard_negatives,
        weights=weights,
    )  # fmt: skip


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def ignore_signals(worker_id: int) -> None:
    """In a DataLoader worker process: ignore SIGINT and SIGTERM. A Ctrl-C or a SIGTERM to
    the process group reaches the workers too; the main process turns it into one line and
    shuts its workers down, which must not print tracebacks of their own meanwhile. The
    workers start with the signals blocked (:func:`start_batches`), so none arrives before
    this runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    quiet_handle_sharing()


def quiet_handle_sharing() -> None:
    """In a DataLoader worker process: a batch's tensors reach the main process as file
    descriptors, which the worker hands over from a ``multiprocessing.resource_sharer``
    thread. When the main process is interrupted in the middle of such a hand-over, that
    thread meets a closed connection and prints a traceback through ``sys.excepthook``
    (while the main process prints its one line). Such connection errors, and only those
    raised inside the resource sharer, are dropped here; anything else still prints."""
    import multiprocessing
    from multiprocessing import resource_sharer

    previous = sys.excepthook
    gone = (EOFError, OSError, multiprocessing.AuthenticationError)

    def hook(kind, value, tb):
        frames, at = [], tb
        while at is not None:
            frames.append(at.tb_frame.f_code.co_filename)
            at = at.tb_next
        if issubclass(kind, gone) and resource_sharer.__file__ in frames:
            return
        previous(kind, value, tb)

    sys.excepthook = hook


def start_batches(loader):
    """``iter(loader)``; when that forks worker processes, with SIGINT and SIGTERM deferred
    meanwhile (and blocked in the main thread, which the workers inherit): a signal then
    waits for the workers to be set up, which are shut down again before it is raised."""
    if not getattr(loader, "num_workers", 0):
        return iter(loader)
    with signals_deferred(raise_after=False):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            it = iter(loader)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if PENDING:
        finish_batches(it, quiet=True)
        raise_if_interrupted()
    return it


def finish_batches(it, quiet: bool = False) -> None:
    """Shut an epoch's batch iterator down now, with SIGINT and SIGTERM deferred: left to
    the garbage collector, its worker shutdown can meet a signal inside ``__del__``, where
    Python prints the exception, leaves the iterator half shut down and can hang at exit.
    A signal that arrives meanwhile is raised right after, in ordinary code. ``quiet``: an
    epoch cut short by an error or an interrupt; a failure of the shutdown itself (or a
    signal meanwhile) is then not raised over that error."""
    shutdown = getattr(it, "_shutdown_workers", None)  # PyTorch's multi-process iterator
    if shutdown is None:
        return
    with signals_deferred(raise_after=not quiet):
        try:
            shutdown()
        except Exception:
            if not quiet:
                raise
