"""Non-GNN baselines on the same split and the same ranking protocol as the models.

Ranking: popularity (on a friendship graph: degree), common neighbours and Adamic-Adar (the
rule-based friend recommenders: friends of friends, counted or weighted by how rare the
shared friend is), item-kNN (cosine on the binary interaction matrix, top-K neighbours
per item), EASE (Steck 2019: a closed-form item-item model, binary or with low-rated edges
down-weighted), ALS and BPR matrix factorisation (the ``implicit`` package; ALS also with
low-rated edges down-weighted, as graphrec's ``train.low_label_weight`` does for a GNN, so a
GNN's win is not just the ratings it was given), Node2Vec-kNN (items nearest to the mean
Node2Vec vector of the user's items: the DVD-rental tutorial's recommender). Ratings: the
user+item bias model (regularised, alternating closed-form sweeps) and biased matrix
factorisation (``mu + b_u + b_i + <p_u, q_i>``, Adam, L2). Each one is fit on a history of
(user, item[, rating]) edges; hyper-parameters are chosen on validation by the caller
(:mod:`graphrec.compare.runner`), never on test.

Item-kNN and EASE hold a dense ``items x items`` matrix: fine for benchmark catalogues (10k
items: 380 MB; EASE's inverse about 15 s on 2 cores), not for millions of items. EASE refuses
a catalogue whose matrices do not fit in half of this machine's memory, naming the size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphrec.errors import ConfigError
from graphrec.graph.hetero import label_weights
from graphrec.models.closed_form import dense_items_fit
from graphrec.models.ease import ease_weights
from graphrec.ranking.metrics import popularity_vectors

RANKING_BASELINES = (
    "popularity", "itemknn", "ease", "ease_rated", "als", "als_rated", "bpr",
    "common_neighbours", "adamic_adar", "node2vec_knn",
)  # fmt: skip
RATING_BASELINES = ("bias", "biased_mf")
NEEDS_RATINGS = (*RATING_BASELINES, "als_rated", "ease_rated")  # skipped on a graph without a label
NEEDS_ONE_TYPE = ("common_neighbours", "adamic_adar")  # friendships: users and items one type


@dataclass
class History:
    """Known interactions: parallel id tensors (and ratings, where there are any)."""

    users: Tensor
    items: Tensor
    num_users: int
    num_items: int
    ratings: Tensor | None = None

    def matrix(self) -> Tensor:
        """Binary ``[num_users, num_items]`` interaction matrix (dense float32)."""
        r = torch.zeros(self.num_users, self.num_items)
        r[self.users, self.items] = 1.0
        return r

    def csr(self, values: Tensor | None = None):
        """scipy CSR of the interactions: 1 per edge, or ``values``."""
        import scipy.sparse as sp

        if values is None:
            data = np.ones(len(self.users), dtype=np.float32)
        else:
            data = values.numpy().astype(np.float32)
        shape = (self.num_users, self.num_items)
        return sp.csr_matrix((data, (self.users.numpy(), self.items.numpy())), shape=shape)


class Ranker:
    """Scores of every item for a range of users: ``scores(start, stop) -> [B, I]``."""

    def scores(self, start: int, stop: int) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class VectorRanker(Ranker):
    """Inner products of user and item vectors (MF, popularity, any model's vectors)."""

    def __init__(self, user_vectors: Tensor, item_vectors: Tensor) -> None:
        self.uv, self.iv_t = user_vectors.float(), item_vectors.float().t().contiguous()

    def scores(self, start: int, stop: int) -> Tensor:
        return self.uv[start:stop] @ self.iv_t


def popularity(h: History) -> VectorRanker:
    """Items by number of interactions in the history (the job's popularity ranking)."""
    return VectorRanker(*popularity_vectors(h.items, h.num_users, h.num_items))


def embedding_knn(h: History, item_vectors: Tensor) -> VectorRanker:
    """Items nearest, by cosine, to the mean of the user's items (the DVD-rental tutorial's
    Node2Vec recommender): ``score(u, i) = <mean_{j in hist(u)} e_j, e_i>`` with unit-length
    item vectors ``e``. A user without history scores every item 0."""
    iv = torch.nn.functional.normalize(item_vectors.float(), dim=1)
    uv = torch.zeros(h.num_users, iv.shape[1]).index_add_(0, h.users, iv[h.items])
    count = torch.bincount(h.users, minlength=h.num_users).clamp(min=1)
    return VectorRanker(uv / count.unsqueeze(1), iv)


class SharedNeighbours(Ranker):
    """Friend-of-friend scores on an undirected graph (users and items one node type, the
    history holding both directions of each pair): common neighbours
    ``|N(u) & N(v)|``, the count a Gremlin ``both().both()`` query gives, or Adamic-Adar
    ``sum_{z in N(u) & N(v)} 1 / log deg(z)`` (Adamic and Adar 2003), which counts a shared
    friend with few friends more. Sparse products, one block of users at a time."""

    def __init__(self, h: History, adamic_adar: bool) -> None:
        import scipy.sparse as sp

        self.a = h.csr()
        self.left = self.a
        if adamic_adar:
            deg = np.asarray(self.a.sum(axis=0)).ravel()
            w = np.where(deg > 1, 1.0 / np.log(np.maximum(deg, 2)), 0.0).astype(np.float32)
            self.left = (self.a @ sp.diags(w)).tocsr()

    def scores(self, start: int, stop: int) -> Tensor:
        block = self.left[start:stop] @ self.a.T
        return torch.from_numpy(np.asarray(block.todense(), dtype=np.float32))


class ItemKNN(Ranker):
    """``score(u, i) = sum_{j in hist(u)} sim(j, i)`` with cosine similarity between item
    columns, each item keeping its ``neighbours`` most similar items (None: all)."""

    def __init__(self, h: History, neighbours: int | None) -> None:
        self.r = h.matrix()
        norms = self.r.sum(0).sqrt().clamp(min=1e-9)
        sim = (self.r.t() @ self.r) / norms.unsqueeze(1) / norms.unsqueeze(0)
        sim.fill_diagonal_(0.0)
        if neighbours is not None and neighbours < h.num_items:
            val, idx = torch.topk(sim, neighbours, dim=0)  # per target item (column)
            sim = torch.zeros_like(sim).scatter_(0, idx, val)
        self.sim = sim

    def scores(self, start: int, stop: int) -> Tensor:
        return self.r[start:stop] @ self.sim


class EASE(Ranker):
    """Embarrassingly shallow autoencoder (Steck 2019): item-item weights ``B`` minimising
    ``||X - X B||^2 + lam ||B||^2`` with ``diag(B) = 0``, in closed form:
    ``P = (X^T X + lam I)^-1``, ``B_ij = -P_ij / P_jj`` (``B_jj = 0``); ``score(u) = x_u B``.

    ``X`` is binary, or with ``low_label_weight`` 1 for edges labelled ``>= threshold`` and
    ``low_label_weight`` below (the weighting ``als_rated`` and the GNNs use). Cost: one
    ``items x items`` Cholesky inverse (``O(I^3)`` time, about ``3 I^2`` floats of memory),
    independent of the number of users and edges; the history stays sparse.
    """

    def __init__(
        self,
        h: History,
        lam: float,
        low_label_weight: float | None = None,
        threshold: float = 4.0,
        memory_bytes: int | None = None,
    ) -> None:
        check_dense_items(h.num_items, "ease", copies=3, memory_bytes=memory_bytes)
        values = None
        if low_label_weight is not None:
            if h.ratings is None:
                raise ConfigError("ease with rating weights needs rated edges (build.label)")
            values = label_weights(h.ratings, low_label_weight, threshold)
        self.x = h.csr(values)
        gram = torch.from_numpy((self.x.T @ self.x).toarray()).float()
        self.b = ease_weights(gram, lam, "ease: lam")

    def scores(self, start: int, stop: int) -> Tensor:
        return torch.from_numpy(self.x[start:stop].toarray()) @ self.b


def check_dense_items(
    num_items: int, name: str, copies: int, memory_bytes: int | None = None
) -> None:
    """Refuse a dense ``items x items`` baseline whose ``copies`` float32 matrices need more
    than half of this machine's memory (``memory_bytes``: the total to judge against)."""
    ok, text = dense_items_fit(num_items, copies, 0.5, memory_bytes)
    if not ok:
        raise ConfigError(
            f"{name}: {text}; leave {name} out of compare.baselines for this graph (als and "
            "the graph models scale with edges, not items squared)"
        )


def _implicit():
    try:
        import implicit  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the ALS and BPR baselines use the 'implicit' package: pip install implicit"
        ) from None
    import implicit.cpu.als
    import implicit.cpu.bpr

    return implicit.cpu


def als(
    h: History,
    factors: int,
    regularization: float,
    iterations: int,
    seed: int,
    alpha: float = 1.0,
    low_label_weight: float | None = None,
    threshold: float = 4.0,
):
    """Implicit-feedback ALS (Hu, Koren and Volinsky 2008): confidence ``1 + alpha * v`` on
    observed entries, 1 on the rest. ``v`` is 1 per edge (the binary matrix) or, with
    ``low_label_weight``, 1 for edges labelled ``>= threshold`` and ``low_label_weight``
    below: the same rating weights graphrec's ``train.low_label_weight`` gives a GNN."""
    cpu = _implicit()
    from threadpoolctl import threadpool_limits  # a dependency of implicit

    values = None
    if low_label_weight is not None:
        if h.ratings is None:
            raise ConfigError("als with rating weights needs rated edges (build.label)")
        values = label_weights(h.ratings, low_label_weight, threshold)
    # implicit parallelizes itself and BLAS threads fight it; it checks (and warns) when
    # the model is made, so both happen with BLAS held to one thread
    with threadpool_limits(1, "blas"):
        model = cpu.als.AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
        )
        model.fit(h.csr(values), show_progress=False)
    return VectorRanker(torch.from_numpy(model.user_factors), torch.from_numpy(model.item_factors))


def bpr(h: History, factors: int, learning_rate: float, iterations: int, seed: int):
    """BPR matrix factorisation (Rendle et al. 2009), sampled per user. One thread: implicit's
    threads update the factors lock-free (Hogwild), so with more the same seed gave
    different tables (about 1.4x slower on 2 cores)."""
    cpu = _implicit()
    model = cpu.bpr.BayesianPersonalizedRanking(
        factors=factors,
        learning_rate=learning_rate,
        regularization=0.01,
        iterations=iterations,
        random_state=seed,
        num_threads=1,
    )
    model.fit(h.csr(), show_progress=False)
    return VectorRanker(torch.from_numpy(model.user_factors), torch.from_numpy(model.item_factors))


# --------------------------------------------------------------------------- ratings
class RatingModel:
    """Predicts ratings of (user, item) pairs; its ranking is by predicted rating."""

    def predict(self, users: Tensor, items: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def ranker(self) -> Ranker:  # pragma: no cover
        raise NotImplementedError


class BiasModel(RatingModel):
    """``mu + b_u + b_i``, regularised by ``reg``, fit by alternating closed-form sweeps."""

    def __init__(self, h: History, reg: float, sweeps: int = 15) -> None:
        assert h.ratings is not None
        r = h.ratings.double()
        self.mu = float(r.mean())
        bu = torch.zeros(h.num_users, dtype=torch.float64)
        bi = torch.zeros(h.num_items, dtype=torch.float64)
        nu = torch.bincount(h.users, minlength=h.num_users).double()
        ni = torch.bincount(h.items, minlength=h.num_items).double()
        for _ in range(sweeps):
            res = r - self.mu - bu[h.users]
            bi = torch.zeros_like(bi).index_add_(0, h.items, res) / (ni + reg)
            res = r - self.mu - bi[h.items]
            bu = torch.zeros_like(bu).index_add_(0, h.users, res) / (nu + reg)
        self.bu, self.bi = bu.float(), bi.float()

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        return self.mu + self.bu[users] + self.bi[items]

    def ranker(self) -> Ranker:
        return VectorRanker(torch.ones(len(self.bu), 1), self.bi.unsqueeze(1))


class BiasedMF(RatingModel):
    """``mu + b_u + b_i + <p_u, q_i>`` trained with Adam on mini-batches of ratings (MSE +
    ``reg`` x squared norms of the rows in the batch); the epoch with the lowest validation
    RMSE is kept (``val``: (users, items, ratings)) and returned as ``best_epoch``."""

    def __init__(
        self,
        h: History,
        factors: int,
        reg: float,
        epochs: int,
        seed: int,
        val: tuple[Tensor, Tensor, Tensor] | None = None,
        lr: float = 0.005,
        batch: int = 1024,
        patience: int = 5,
    ) -> None:
        assert h.ratings is not None
        gen = torch.Generator().manual_seed(seed)
        self.mu = float(h.ratings.mean())
        p = (torch.randn(h.num_users, factors, generator=gen) * 0.05).requires_grad_()
        q = (torch.randn(h.num_items, factors, generator=gen) * 0.05).requires_grad_()
        bu = torch.zeros(h.num_users, requires_grad=True)
        bi = torch.zeros(h.num_items, requires_grad=True)
        self.p, self.q, self.bu, self.bi = p, q, bu, bi
        opt = torch.optim.Adam([p, q, bu, bi], lr=lr)
        n = len(h.users)
        best, self.best_epoch, state, stale = math.inf, epochs, None, 0
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch):
                idx = perm[s : s + batch]
                u, i, y = h.users[idx], h.items[idx], h.ratings[idx]
                pred = self.mu + bu[u] + bi[i] + (p[u] * q[i]).sum(1)
                reg_term = (p[u] ** 2).sum(1) + (q[i] ** 2).sum(1) + bu[u] ** 2 + bi[i] ** 2
                loss = ((pred - y) ** 2).mean() + reg * reg_term.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if val is None:
                continue
            with torch.no_grad():
                err = float(torch.sqrt(((self.predict(val[0], val[1]) - val[2]) ** 2).mean()))
            if err < best:
                best, self.best_epoch, stale = err, epoch, 0
                state = [t.detach().clone() for t in (p, q, bu, bi)]
            else:
                stale += 1
                if stale >= patience:
                    break
        if state is not None:
            self.p, self.q, self.bu, self.bi = state
        self.p, self.q = self.p.detach(), self.q.detach()
        self.bu, self.bi = self.bu.detach(), self.bi.detach()

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        with torch.no_grad():
            return (
                self.mu + self.bu[users] + self.bi[items] + (self.p[users] * self.q[items]).sum(1)
            )

    def ranker(self) -> Ranker:
        ones = torch.ones(len(self.p), 1)
        return VectorRanker(torch.cat([self.p, ones], 1), torch.cat([self.q, self.bi[:, None]], 1))
