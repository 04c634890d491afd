"""A Deep Q-Network recommender (``model.name: dqn``) on graph embeddings of the items.

The DVD-rental tutorial's idea (a customer's state is the mean embedding of the films they
rented; the agent's action is turned into the films nearest to it; the reward is how many
of them the customer rents), with its flaws fixed:

* **A Q-function that estimates return.** Dueling (Wang et al. 2016): ``Q(s, a) = V(s) +
  A(s, a) - mean_a A(s, a)``, ``A(s, a) = <f(s), e_a> + b_a``: ``e_a`` the item's Node2Vec
  vector (unit length, fixed), ``b_a`` a learned item bias that starts at the reward a
  state-blind agent expects from the item (``horizon`` x its share of the training edges:
  the first policy is popularity), ``f(s) = w s + MLP(s)`` with ``w`` and the MLP's last
  layer starting at zero (``w`` learns how much the Node2Vec-kNN direction is worth, the
  MLP the rest); ``V`` carries the action-independent discounted future, which would
  otherwise flow into the biases of the items the agent happened to choose. The target is
  the Bellman one in its Double-DQN form, ``r + gamma * Q_target(s', argmax_a'
  Q(s', a'))`` (the max over a thousand noisy items overestimates), with a target network
  copied every ``target_every`` steps (the tutorial regressed the next *state*). Huber
  loss. Validation also scores the first policy; it is kept when no epoch beats it.
* **The reward looks forward.** Reward 1 when the recommended item is among the user's next
  ``horizon`` items, never for an item already seen (the tutorial rewarded films the
  customer had rented before).
* **Evaluation on held-out data.** Training uses the training edges only; validation picks
  the epoch; the test split is scored by the same protocol as every model.

An **episode** is one user's training sequence in time order: at step ``t`` the state is
the mean item vector of the user's last ``state_window`` items up to ``t``, the action an
item chosen epsilon-greedily (uniformly at random with probability epsilon, else the
argmax of Q), the next state the one after the user's actual next item. The data are
logged rentals, so actions do not change what the user does next: a whole episode is
played with one forward pass. Its transitions enter a replay memory; one gradient step on
a uniform sample follows every ``train_every`` transitions. Epsilon falls linearly over the
first ``epsilon_decay`` share of the episodes. Seeded: one generator draws the episode
order, the exploration and the replay samples.

Recommendation: the user's state after all their training items, ``vectors()`` =
``([f(s_u), 1], [e_a, b_a])`` (the advantage, which ranks as Q does), so top-k unseen,
the sinks and ``graphrec compare`` treat it like every model. It needs
``build.timestamp`` (the order of a user's items), trains in one process, and cannot
embed users or items added later (no ``transform``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.config import JobConfig, Node2VecConfig
from graphrec.errors import ConfigError, warn
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.registry import ModelSpec, ranks_items, register


class QNetwork(nn.Module):
    """Dueling Q-values over every item: ``Q(s, a) = V(s) + A(s, a) - mean_a A(s, a)`` with
    ``A(s, a) = <f(s), e_a> + b_a`` and ``f(s) = w s + W2 relu(W1 s)``.

    ``V`` takes the part of the return that does not depend on the action (the discounted
    future of the state), so the item terms learn what differs between items; ``w`` and
    ``W2`` start at zero, so the first ranking is by ``b_a`` alone (set by the trainer to
    a popularity prior); ``w`` learns how far the similarity to the
    recent items (Node2Vec-kNN) predicts what comes next, the MLP the rest."""

    def __init__(self, dim: int, hidden: int, num_items: int) -> None:
        super().__init__()
        self.skip = nn.Parameter(torch.zeros(()))
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)
        self.value = nn.Linear(dim, 1)
        self.bias = nn.Parameter(torch.zeros(num_items))

    def query(self, s: Tensor) -> Tensor:
        return self.skip * s + self.outer(torch.relu(self.inner(s)))

    def q(self, s: Tensor, items: Tensor, actions: Tensor | None = None) -> Tensor:
        """``[B, items]`` Q-values (``actions``: ``[B]`` of them only)."""
        f = self.query(s)
        mean = f @ items.mean(0) + self.bias.mean()
        if actions is None:
            adv = f @ items.t() + self.bias
            return self.value(s) + adv - mean[:, None]
        adv = (f * items[actions]).sum(1) + self.bias[actions]
        return self.value(s).squeeze(1) + adv - mean

    def greedy(self, s: Tensor, items: Tensor) -> Tensor:
        """``[B]`` argmax of :meth:`q` over the items: that of the advantage alone (``V(s)``
        and the mean advantage are the same for every item), one fused matmul + bias."""
        return torch.addmm(self.bias, self.query(s), items.t()).argmax(1)


class DQNRecommender(nn.Module):
    """The Q-network, the item vectors and each user's final training state."""

    def __init__(self, num_users: int, num_items: int, dim: int, hidden: int, target) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.user, self.item = target[0], target[2]
        self.q = QNetwork(dim, hidden, num_items)
        self.register_buffer("item_vectors", torch.zeros(num_items, dim))
        self.register_buffer("user_states", torch.zeros(num_users, dim))

    @property
    def device(self) -> torch.device:
        return self.q.bias.device

    def q_values(
        self, states: Tensor, net: QNetwork | None = None, actions: Tensor | None = None
    ) -> Tensor:
        """Q of every item (or of ``actions``) in each state (``net``: the target copy)."""
        return (net or self.q).q(states, self.item_vectors, actions)

    def greedy(self, states: Tensor) -> Tensor:
        """The online network's best item in each state (no gradient)."""
        return self.q.greedy(states, self.item_vectors)

    def forward(self, data, pairs: Tensor, *args) -> Tensor:
        """Q of ``(user, item)`` pairs in the users' final training states."""
        return self.q_values(self.user_states[pairs[0]], actions=pairs[1])

    @torch.no_grad()
    def vectors(self, data) -> tuple[Tensor, Tensor]:
        """``[f(s_u), 1]`` and ``[e_a, b_a]``: their inner product is the advantage
        ``A(s_u, a)``, which ranks items exactly as ``Q(s_u, a)`` does (``V(s_u)`` and the
        mean advantage are the same for every item of a user)."""
        ones = torch.ones(self.num_users, 1, device=self.device)
        users = torch.cat([self.q.query(self.user_states), ones], 1)
        return users, torch.cat([self.item_vectors, self.q.bias.detach()[:, None]], 1)


class Sequences:
    """Every user's training items in time order (ties: edge order), as one flat tensor
    with per-user offsets, and the state before each step."""

    def __init__(self, graph: Graph, train: Tensor, item_vectors: Tensor, window: int) -> None:
        if graph.time is None:
            raise ConfigError("model.name=dqn needs build.timestamp: the order of a user's items")
        ei = graph.target_index
        users, items, time = ei[0, train], ei[1, train], graph.time[train]
        order = torch.argsort(time, stable=True)
        order = order[torch.argsort(users[order], stable=True)]
        self.users, self.items = users[order], items[order]
        n_users = graph.num_nodes[graph.user_type]
        counts = torch.bincount(self.users, minlength=n_users)
        self.start = torch.zeros(n_users + 1, dtype=torch.long)
        self.start[1:] = counts.cumsum(0)
        self.counts = counts
        # state after position j: mean vector of the items at positions max(start, j-w+1)..j
        vec = item_vectors[self.items]
        csum = torch.cat([torch.zeros(1, vec.shape[1]), vec.cumsum(0)])
        pos = torch.arange(len(self.items))
        first = torch.maximum(self.start[self.users], pos - window + 1)
        self.states = (csum[pos + 1] - csum[first]) / (pos + 1 - first).unsqueeze(1).float()
        self.window = window

    def final_states(self, n_users: int, dim: int) -> Tensor:
        """Each user's state after their last training item (zeros: no training item)."""
        out = torch.zeros(n_users, dim)
        has = self.counts > 0
        out[has] = self.states[self.start[1:][has] - 1]
        return out

    def popularity_prior(self, num_items: int, horizon: int) -> Tensor:
        """Per item: the reward a state-blind agent expects from recommending it, when each
        of a user's next ``horizon`` items is that item with its share of the training
        edges: ``min(1, horizon * count_a / edges)``. It ranks items as popularity does."""
        count = torch.bincount(self.items, minlength=num_items).float()
        return (horizon * count / max(len(self.items), 1)).clamp(max=1.0)

    def future_hits(self, j: Tensor, actions: Tensor, horizon: int) -> Tensor:
        """1.0 where ``actions[k]`` is among the items at positions ``j[k]+1 .. j[k]+horizon``
        of the same user."""
        end = self.start[self.users[j] + 1]
        hit = torch.zeros(len(j))
        for d in range(1, horizon + 1):
            p = j + d
            ok = p < end
            hit[ok] = torch.maximum(hit[ok], (self.items[p[ok]] == actions[ok]).float())
        return hit


def item_node2vec(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> Tensor:
    """Unit-length Node2Vec vectors of the items, from the training edges."""
    from graphrec.graph.node2vec import item_vectors

    n2v = cfg.model.dqn.node2vec or cfg.build.node2vec or Node2VecConfig(seed=cfg.train.seed)
    vec = item_vectors(graph, split.train, n2v, "model.name=dqn")
    return torch.nn.functional.normalize(vec, dim=1)


def node2vec_dim(cfg: JobConfig) -> int:
    n2v = cfg.model.dqn.node2vec or cfg.build.node2vec or Node2VecConfig()
    return n2v.dim


def build_dqn(graph: Graph, split: EdgeSplit, cfg: JobConfig) -> DQNRecommender:
    return DQNRecommender(
        graph.num_nodes[graph.user_type],
        graph.num_nodes[graph.item_type],
        node2vec_dim(cfg),
        cfg.model.dqn.hidden,
        graph.target,
    )


def check_dqn(cfg: JobConfig) -> None:
    ranks_items(cfg)
    if cfg.build.timestamp is None:
        raise ConfigError("model.name=dqn needs build.timestamp: the order of a user's items")
    if cfg.distributed.workers > 0:
        raise ConfigError("model.name=dqn trains in one process: set distributed.workers=0")
    if cfg.model.blend != "none":
        raise ConfigError("model.name=dqn is not blended: set model.blend=none")


def warn_single(seq: Sequences) -> None:
    one = int((seq.counts == 1).sum())
    if one:
        warn(
            f"model.name=dqn: {one:,} users have a single training item, no transition to "
            "learn from: they are ranked from that item's state"
        )


register(ModelSpec("dqn", build_dqn, batches="episodes", losses=(), check=check_dqn))
