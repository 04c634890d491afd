"""What the server holds: a run folder's model on the graph as it is now, ready to answer.

:class:`ServedModel` loads like ``graphrec transform`` (the run's config and encoders, the
source re-extracted, every node matched to its trained row and new ones embedded), then
computes every user's and item's vectors once and every known user's top ``max_k`` unseen
items in one batched pass: a known user's request is a lookup. A node that is not in the
graph (``POST /recommendations``) is added to a copy of the graph with its edges and
properties, embedded by the model's ``embed_new`` rule, and scored against every item,
its own neighbours (and itself) excluded.

With ``recommend.method=approximate`` the known users' top ``max_k`` and every folded-in new
user's top k come from a FAISS index over the item vectors
(:mod:`graphrec.ranking.approximate`), its probes tuned at load to the configured recall
against exact top-k; the recall reached is reported by ``/health``. A new node that needs a
pass over the graph (properties, or a model without fold-in) is scored exactly: the pass
costs more than the scoring.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pyarrow as pa
import torch

from graphrec.config import JobConfig
from graphrec.graph import Graph
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import encode_nodes, message_graph
from graphrec.loaders import GraphTables
from graphrec.models.blend import BlendedModel, mix, mix_users, spread_scale
from graphrec.models.inductive import NewNodes
from graphrec.ranking.approximate import MIPSIndex, topk_unseen_approximate
from graphrec.ranking.topk import topk_unseen
from graphrec.transform import TrainedRun, load_current, read_run, rebuild, run_config


class BadRequest(ValueError):
    """A request the server cannot answer: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclasses.dataclass
class Answer:
    items: list
    scores: list[float]
    fallback: str | None = None


class ServedModel:
    """A run folder's model, every known user's top ``max_k`` precomputed."""

    def __init__(
        self,
        run_dir: str | Path,
        overrides: list[str] | tuple[str, ...] = (),
        max_k: int = 100,
        progress: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        self.run: TrainedRun = read_run(run_dir)
        self.cfg: JobConfig = run_config(self.run, overrides)
        self.max_k = max_k
        self.graph: Graph
        self.graph, self.nodes, self.model, self.new_items = load_current(
            self.run, self.cfg, progress=progress
        )
        g = self.graph
        self.user, self.item = g.user_type, g.item_type
        self.n_users, self.n_items = g.num_nodes[self.user], g.num_nodes[self.item]
        self.user_row = {v: n for n, v in enumerate(g.node_ids[self.user].to_pylist())}
        self.item_ids = g.node_ids[self.item].to_pylist()
        self.item_row = {v: n for n, v in enumerate(self.item_ids)}
        data = message_graph(g, None, self.cfg.build.reverse_edges).to(self.model.device)
        blend = isinstance(self.model, BlendedModel)
        self.members = [self.model.base, self.model.partner] if blend else [self.model]
        if blend:  # both parts' item vectors are kept for new users' scores
            parts = self.model.parts(data)
            self.part_items = [iv for _, iv in parts]
            self.user_vectors, self.item_vectors = mix(*parts, self.model.weight)
        else:
            self.user_vectors, self.item_vectors = self.model.vectors(data)
            self.part_items = [self.item_vectors]
        self.fold = None  # a new user folded in from its items, no pass over the graph
        if all(hasattr(m, "fold_in") for m in self.members):
            self.fold = [m.fold_in_state(data) for m in self.members]
        ei = g.target_index
        blocked = self.nodes.new(self.item) if not self.new_items else None
        self.blocked = blocked if blocked is not None and blocked.any() else None
        self.index: MIPSIndex | None = None
        self.index_report: dict | None = None
        self.top, self.top_scores = self._rank_known(ei)
        pop = torch.bincount(ei[1], minlength=self.n_items).float()
        self.popular = torch.argsort(-pop, stable=True)[:max_k]
        self.lock = threading.Lock()  # new-node requests build on one shared graph
        self.seconds = time.perf_counter() - t0

    @property
    def name(self) -> str:
        return self.run.folder.name

    def _rank_known(self, ei: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every known user's top ``max_k`` unseen items (items it cannot score left out)."""
        u, i = ei[0], ei[1]
        if self.graph.same_type:  # nobody is recommended to themselves
            u = torch.cat([u, torch.arange(self.n_users)])
            i = torch.cat([i, torch.arange(self.n_users)])
        allowed = torch.arange(self.n_items)
        if self.blocked is not None:
            allowed = torch.nonzero(~self.blocked).squeeze(1)
        col = torch.full((self.n_items,), -1, dtype=torch.long)
        col[allowed] = torch.arange(len(allowed))
        keep = col[i] >= 0
        exclude = to_csr(u[keep], col[i[keep]], self.n_users)
        iv = self.item_vectors if self.blocked is None else self.item_vectors[allowed]
        k = min(self.max_k, len(allowed))
        self.allowed, self.column = allowed, col  # item row -> index column (-1: not in it)
        rc = self.cfg.recommend
        if rc.method == "approximate":
            self.index = MIPSIndex(iv, rc.index_lists, self.cfg.train.seed)
            top, scores, report = topk_unseen_approximate(
                self.user_vectors,
                iv,
                exclude,
                k,
                rc.batch_users,
                rc.target_recall,
                seed=self.cfg.train.seed,
                index=self.index,
            )
            self.index_report = report.as_dict()
            self.probes = report.probes
        else:
            top, scores = topk_unseen(self.user_vectors, iv, exclude, k, rc.batch_users)
        return torch.where(top >= 0, allowed[top.clamp(min=0)], -1), scores

    def known(self, user, k: int) -> Answer | None:
        """Top ``k`` for a user of the graph (None: not in it)."""
        row = self.user_row.get(user)
        if row is None:
            return None
        items, scores = self.top[row, :k], self.top_scores[row, :k]
        keep = items >= 0
        return Answer([self.item_ids[i] for i in items[keep].tolist()], scores[keep].tolist())

    def popularity(self, k: int) -> Answer:
        items = self.popular[:k].tolist()
        return Answer([self.item_ids[i] for i in items], [None] * len(items), "popularity")

    def new_node(self, neighbours: list, ratings: list | None, properties: dict, k: int) -> Answer:
        """Top ``k`` for a node not in the graph, from its edges to ``neighbours`` (items,
        or people for friends) and its ``properties``, embedded by the model's rule."""
        rows = []
        for n, v in enumerate(neighbours):
            r = self.item_row.get(v)
            if r is None:
                raise BadRequest(f"items[{n}]", f"{self.item} {v!r} is not in the graph")
            rows.append(r)
        if ratings is not None and len(ratings) != len(rows):
            raise BadRequest("ratings", f"{len(ratings)} ratings for {len(rows)} items")
        if self.fold is not None and not properties:
            # a blend's parts are standardised by their scores over every item: with those
            # computed, the index would save nothing
            if self.index is not None and len(self.members) == 1:
                return self._search(self._folded(rows, ratings, vector=True), rows, k)
            return self._answer(self._folded(rows, ratings), rows, None, k)
        with self.lock:
            graph, nodes = self._with_node(rows, ratings, properties)
            model = self._embed(graph, nodes)
            data = message_graph(graph, None, self.cfg.build.reverse_edges).to(model.device)
            me = torch.tensor([graph.num_nodes[self.user] - 1])
            with torch.no_grad():
                if isinstance(model, BlendedModel):
                    scores = model.scores_for(data, me).squeeze(0).float().cpu()
                else:
                    uv, iv = model.vectors(data)
                    scores = (uv[me.to(uv.device)].float() @ iv.float().t()).squeeze(0).cpu()
        return self._answer(scores, rows, me if graph.same_type else None, k)

    def _answer(self, scores: torch.Tensor, rows: list[int], me, k: int) -> Answer:
        """Top ``k`` of ``scores`` over the items, its own items (and itself) excluded."""
        scores = scores.clone()
        scores[torch.tensor(sorted(set(rows)), dtype=torch.long)] = float("-inf")
        if me is not None and len(scores) > int(me):
            scores[me] = float("-inf")
        if self.blocked is not None:
            scores[: self.n_items][self.blocked] = float("-inf")
        val, idx = torch.topk(scores, min(k, len(scores)))
        keep = torch.isfinite(val)
        return Answer([self.item_ids[i] for i in idx[keep].tolist()], val[keep].tolist())

    def _search(self, vector: torch.Tensor, rows: list[int], k: int) -> Answer:
        """Top ``k`` from the index, the user's own items excluded (friends: the new node
        is not in the index, so it cannot be recommended to itself)."""
        own = self.column[torch.tensor(sorted(set(rows)), dtype=torch.long)]
        own = own[own >= 0]
        exclude = (torch.tensor([0, len(own)]), own)
        top, scores, short = self.index.search_unseen(vector.view(1, -1), exclude, k, self.probes)
        if short.any():  # too few unseen items among the probed cells: score them all
            return self._answer(vector @ self.item_vectors.float().t().cpu(), rows, None, k)
        keep = top[0] >= 0
        items = self.allowed[top[0][keep]].tolist()
        return Answer([self.item_ids[i] for i in items], scores[0][keep].tolist())

    @torch.no_grad()
    def _folded(self, rows: list[int], ratings, vector: bool = False) -> torch.Tensor:
        """A new user's scores over every item by each model's ``fold_in`` (no graph pass),
        or with ``vector`` its vector, whose inner product with ``item_vectors`` is that
        score. A blend standardises each part as :class:`BlendedModel` does (its spread is
        taken from the part's scores, each computed once) and mixes them."""
        items = torch.tensor(rows, dtype=torch.long)
        labels = None
        if self.graph.label is not None:
            given = (
                ratings
                if ratings is not None
                else [self.cfg.evaluate.positive_threshold] * len(rows)
            )
            labels = torch.tensor(given, dtype=torch.float32)
        blend = len(self.members) > 1
        users, scores = [], []
        for m, state, iv in zip(self.members, self.fold, self.part_items, strict=True):
            uv = m.fold_in(state, items, labels).float()
            if blend or not vector:
                s = (uv @ iv.float().t()).squeeze(0)
                if blend:
                    scale = spread_scale(s.std().view(1))
                    uv, s = uv * scale, s * scale
                scores.append(s)
            users.append(uv)
        if vector:
            return (mix_users(*users, self.model.weight) if blend else users[0]).squeeze(0).cpu()
        if not blend:
            return scores[0].cpu()
        w = self.model.weight
        return ((1 - w) * scores[0] + w * scores[1]).cpu()

    def _with_node(self, rows: list[int], ratings, properties: dict) -> tuple[Graph, NewNodes]:
        """A copy of the graph with one more user (its target edges, encoded properties)."""
        g, user = self.graph, self.user
        ids = g.node_ids[user]
        new_id = _fresh_id(ids)
        node_ids = dict(g.node_ids)
        node_ids[user] = pa.concat_arrays([ids, pa.array([new_id], type=ids.type)])
        me = len(ids)
        x = dict(g.x)
        if user in self.run.encoders:
            x[user] = torch.cat([g.x[user], self._encode(properties)])
        elif properties:
            raise BadRequest("properties", f"the model reads no property of {user}")
        dst = torch.tensor(rows, dtype=torch.long)
        new = torch.stack([torch.full_like(dst, me), dst])
        ei = g.target_index
        label, when = g.label, g.time
        if label is not None:
            given = (
                ratings
                if ratings is not None
                else [self.cfg.evaluate.positive_threshold] * len(rows)
            )
            extra = torch.tensor(given, dtype=label.dtype)
        if g.undirected:
            p = g.num_pairs
            ei = torch.cat([ei[:, :p], new, ei[:, p:], new.flip(0)], 1)
            if label is not None:
                label = torch.cat([label[:p], extra, label[p:], extra])
            if when is not None:
                stamp = torch.full((len(rows),), int(when.max()), dtype=when.dtype)
                when = torch.cat([when[:p], stamp, when[p:], stamp])
        else:
            ei = torch.cat([ei, new], 1)
            if label is not None:
                label = torch.cat([label, extra])
            if when is not None:
                when = torch.cat(
                    [when, torch.full((len(rows),), int(when.max()), dtype=when.dtype)]
                )
        edge_index = dict(g.edge_index)
        edge_index[g.target] = ei
        graph = dataclasses.replace(
            g, node_ids=node_ids, x=x, edge_index=edge_index, label=label, time=when
        )
        rows_of = {t: torch.arange(n) for t, n in g.num_nodes.items()}
        rows_of[user] = torch.cat([torch.arange(me), torch.tensor([-1])])
        return graph, NewNodes(rows_of, dict(g.num_nodes))

    def _encode(self, properties: dict) -> torch.Tensor:
        states = self.run.encoders[self.user]
        names = {st["property"] for st in states}
        unknown = sorted(set(properties) - names)
        if unknown:
            raise BadRequest(
                f"properties.{unknown[0]}",
                f"{self.user} has no encoded property {unknown[0]!r} "
                f"(have: {', '.join(sorted(names))})",
            )
        columns = {}
        for st in states:
            value = properties.get(st["property"])
            try:
                columns[st["property"]] = pa.array([value])
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise BadRequest(f"properties.{st['property']}", str(exc)) from None
        tables = GraphTables(nodes={self.user: pa.table(columns)})
        try:
            x, _ = encode_nodes(tables, self.cfg.build, {}, False, fitted={self.user: states})
        except Exception as exc:  # a value the fitted encoder cannot read
            raise BadRequest("properties", str(exc).splitlines()[0]) from None
        return x[self.user]

    def _embed(self, graph: Graph, nodes: NewNodes):
        """The served model extended to ``graph`` by its own rule (known rows shared)."""
        model, _ = rebuild(self.run, self.cfg, graph, nodes, self.model.state_dict())
        return model


def _fresh_id(ids: pa.Array):
    """An id of ``ids``' type that no node has (the request's node is anonymous)."""
    if pa.types.is_integer(ids.type):
        return (max(ids.to_pylist()) if len(ids) else 0) + 1
    taken = set(ids.to_pylist())
    n = 0
    while f"__new_{n}" in taken:
        n += 1
    return f"__new_{n}"
