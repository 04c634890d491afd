"""Stage 3 for reinforcement-learning models (``dqn``): episodes, a replay memory, a target
network and epsilon-greedy exploration instead of mini-batches (the model and what an
episode is: :mod:`graphrec.models.dqn`).

One epoch plays every user's episode once, in a seeded random order; validation after each
epoch picks the best (its weights are kept), with ``train.patience`` as for every model.
The first policy (before any step: popularity, :meth:`Sequences.popularity_prior`) is
scored too, and an epoch replaces it only when it beats it by more than the noise: the
lower end of a 95% interval of the paired per-user difference in validation NDCG
(``val_gain_low`` in each history row) must be above zero. Otherwise ``best_epoch`` is
0 and the first policy is what recommends: on data where the sequence says nothing
(near-random rentals) the agent falls back to the popularity it started from instead of
its noise.
Each history row has the epoch's mean loss, mean reward, epsilon at its end and the
validation metric; ``result.stats["episodes"]`` keeps loss, mean reward and epsilon per
episode (the run folder's ``dqn_episodes.png`` plots them).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F

from graphrec.config import JobConfig
from graphrec.errors import RunError, raise_if_interrupted
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph
from graphrec.graph.split import EdgeSplit
from graphrec.models.dqn import DQNRecommender, Sequences, item_node2vec, warn_single
from graphrec.ranking.metrics import per_user_ndcg, positives
from graphrec.ranking.topk import topk_unseen
from graphrec.train.context import TrainContext
from graphrec.train.evaluation import validate


class Replay:
    """A ring buffer of transitions ``(position j, action, reward)``: the states are
    :class:`Sequences` rows (``j`` and ``j + 1``), so a transition is three numbers."""

    def __init__(self, size: int) -> None:
        self.j = torch.zeros(size, dtype=torch.long)
        self.action = torch.zeros(size, dtype=torch.long)
        self.reward = torch.zeros(size)
        self.size, self.filled, self.at = size, 0, 0

    def push(self, j, action, reward) -> None:
        for k in range(0, len(j), self.size):  # an episode longer than the memory wraps
            jj, aa, rr = j[k : k + self.size], action[k : k + self.size], reward[k : k + self.size]
            idx = (self.at + torch.arange(len(jj))) % self.size
            self.j[idx], self.action[idx], self.reward[idx] = jj, aa, rr
            self.at = int((self.at + len(jj)) % self.size)
            self.filled = min(self.size, self.filled + len(jj))

    def sample(self, n: int, gen: torch.Generator):
        idx = torch.randint(self.filled, (n,), generator=gen)
        return self.j[idx], self.action[idx], self.reward[idx]


def fit_episodes(
    model: DQNRecommender,
    graph: Graph,
    split: EdgeSplit,
    cfg: JobConfig,
    ctx: TrainContext,
    data,
    result,
    progress: bool = False,
):
    """Train ``model`` on the training edges' episodes; fills and returns ``result``."""
    d, t = cfg.model.dqn, cfg.train
    gen = torch.Generator().manual_seed(t.seed)
    model.item_vectors.copy_(item_node2vec(graph, split, cfg))
    seq = Sequences(graph, split.train, model.item_vectors.cpu(), d.state_window)
    warn_single(seq)
    model.user_states.copy_(seq.final_states(model.num_users, model.dim))
    with torch.no_grad():  # the first policy: popularity, in units of expected reward
        model.q.bias.copy_(seq.popularity_prior(model.num_items, d.horizon))
    states = seq.states.to(model.device)
    target = copy.deepcopy(model.q)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    replay = Replay(d.replay)
    users = torch.nonzero(seq.counts > 1).flatten()  # an episode needs two items
    episodes_total = max(1, t.epochs * len(users))
    decay_over = max(1.0, d.epsilon_decay * episodes_total)
    per_episode = {"loss": [], "mean_reward": [], "epsilon": []}
    has_val = len(split.val) > 0
    best_state, stale, steps, played = None, 0, 0, 0
    first = None  # the first policy's per-user validation NDCG: an epoch must beat it
    if has_val:
        name, value = validate(model, graph, data, split, cfg, ctx)
        result.val_metric = name
        result.stats["first_policy_" + name] = value if math.isfinite(value) else None
        first = per_user_val(model, graph, data, split, cfg)
        if math.isfinite(value):
            result.best_val, result.best_epoch = value, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(1, t.epochs + 1):
        t0 = time.perf_counter()
        losses, rewards, n_trans = [], [], 0
        for u in users[torch.randperm(len(users), generator=gen)].tolist():
            raise_if_interrupted()
            eps = d.epsilon_start + (d.epsilon_end - d.epsilon_start) * min(
                1.0, played / decay_over
            )
            played += 1
            j = torch.arange(int(seq.start[u]), int(seq.start[u + 1]) - 1)  # has a next
            with torch.no_grad():
                greedy = model.greedy(states[j.to(model.device)]).cpu()
            explore = torch.rand(len(j), generator=gen) < eps
            action = torch.where(
                explore, torch.randint(model.num_items, (len(j),), generator=gen), greedy
            )
            reward = seq.future_hits(j, action, d.horizon)
            replay.push(j, action, reward)
            ep_losses = []
            for _ in range(math.ceil(len(j) / d.train_every)):
                loss = _step(model, target, opt, replay, seq, states, d, gen)
                steps += 1
                if steps % d.target_every == 0:
                    target.load_state_dict(model.q.state_dict())
                ep_losses.append(loss)
            mean_loss = sum(ep_losses) / len(ep_losses)
            if not math.isfinite(mean_loss):
                raise RunError(
                    f"train: the DQN loss is {mean_loss} at epoch {epoch} (train.lr={t.lr:g}): "
                    "training stopped, nothing was written"
                )
            per_episode["loss"].append(mean_loss)
            per_episode["mean_reward"].append(float(reward.mean()))
            per_episode["epsilon"].append(eps)
            losses += ep_losses
            rewards.append(reward)
            n_trans += len(j)
        seconds = time.perf_counter() - t0
        all_r = torch.cat(rewards) if rewards else torch.zeros(0)
        row = {
            "epoch": epoch,
            "loss": sum(losses) / max(len(losses), 1),
            "mean_reward": float(all_r.mean()) if len(all_r) else 0.0,
            "epsilon": per_episode["epsilon"][-1] if per_episode["epsilon"] else d.epsilon_start,
            "seconds": seconds,
            "labelled_edges": n_trans,
            "labelled_edges_per_s": n_trans / max(seconds, 1e-9),
            "sample_seconds": 0.0,
            "compute_seconds": seconds,
            "batches": len(losses),
        }
        done = epoch == t.epochs
        if has_val:
            name, value = validate(model, graph, data, split, cfg, ctx)
            result.val_metric = name
            row[name] = value if math.isfinite(value) else None
            low = beats_by(per_user_val(model, graph, data, split, cfg), first)
            row["val_gain_low"] = low
            better = result.best_val is None or value > result.best_val
            if math.isfinite(value) and better and (low is None or low > 0):
                result.best_val, result.best_epoch, stale = value, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            done = done or bool(t.patience and stale >= t.patience)
        else:
            result.best_epoch = epoch
        result.history.append(row)
        if progress:
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            print(f"epoch {epoch}: {shown}", flush=True)
        if done:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if not result.history:
        raise RunError("train: model.name=dqn found no user with two training items to learn from")
    result.stats["episodes"] = per_episode
    return result


def per_user_val(model, graph: Graph, data, split: EdgeSplit, cfg: JobConfig) -> torch.Tensor:
    """Each validation user's NDCG@k (users with a positive, ascending): what
    :func:`beats_by` pairs between two policies."""
    k = cfg.evaluate.k
    ei = graph.target_index
    n_users = graph.num_nodes[graph.user_type]
    uv, iv = model.vectors(data)
    own = torch.arange(n_users) if graph.same_type else None
    exclude = to_csr(ei[0, split.train], ei[1, split.train], n_users, own)
    top, _ = topk_unseen(uv, iv, exclude, k, cfg.evaluate.batch_users)
    pos = positives(graph, split.val, cfg.evaluate.positive_threshold)
    return per_user_ndcg(top, ei[0, pos], ei[1, pos], len(iv), k)[1]


def beats_by(now: torch.Tensor, first: torch.Tensor | None) -> float | None:
    """The lower end of the 95% interval (normal, paired over users) of ``now - first``:
    above zero when the trained policy beats the first one by more than the noise of this
    many validation users. None when there is nothing to compare."""
    if first is None or len(first) < 2:
        return None
    diff = (now - first).double()
    return float(diff.mean() - 1.96 * diff.std() / math.sqrt(len(diff)))


def _step(model, target, opt, replay: Replay, seq: Sequences, states, d, gen) -> float:
    """One gradient step on a replay sample: Huber loss of ``Q(s, a)`` against
    ``r + gamma * Q_target(s', argmax_a' Q(s', a'))`` (no bootstrap after a user's last
    item)."""
    j, action, reward = replay.sample(d.batch_size, gen)
    last = (j + 1) == (seq.start[seq.users[j] + 1] - 1)  # s' is the user's final state
    dev = model.device
    with torch.no_grad():  # Double DQN: the online network picks, the target values
        s2 = states[(j + 1).to(dev)]
        best = model.greedy(s2)
        nxt = model.q_values(s2, target, best)
        y = reward.to(dev) + d.gamma * nxt * (~last).to(dev).float()
    q = model.q_values(states[j.to(dev)], actions=action.to(dev))
    loss = F.smooth_l1_loss(q, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())
