"""One typed config tree for the whole job, parsed from YAML.

The YAML files in ``configs/`` are data; the dataclasses below are the schema. There is one
small dataclass per stage (extract, build, sampler, model, train, evaluate, recommend,
write), composed into :class:`JobConfig`. Unknown keys and wrong types are rejected with the
dotted key that is wrong; ``__post_init__`` rejects contradictions and says what to change.

Command-line overrides are dotted ``key=value`` pairs, values parsed as YAML::

    graphrec run --config configs/movielens.yaml train.epochs=3 sampler.num_neighbors=[5,5]
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.errors import ConfigError
from graphrec.redact import has_userinfo, redact_text, redact_uri

PROPERTY_TYPES = ("string", "float", "int")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: "Movie\n" does not pass
"""What a database label, relationship type or property name may be (it is quoted too)."""
FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
"""What a run name or run id may be: it names a folder, so no separators, no dot-files."""
INT64 = 2**63
NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def _at_least(obj: Any, section: str, **lows: int | float) -> None:
    """Refuse any of the named fields below its lower bound (None: unset, allowed)."""
    for name, low in lows.items():
        value = getattr(obj, name)
        if value is not None and value < low:
            raise ConfigError(f"{section}.{name}={value!r}: must be >= {low}")


def _share(obj: Any, section: str, name: str, upper_open: bool = False) -> None:
    """Refuse a field that is not in [0, 1] (or [0, 1))."""
    value = getattr(obj, name)
    if value < 0 or value > 1 or (upper_open and value == 1):
        raise ConfigError(
            f"{section}.{name}={value!r}: must be in [0, {'1)' if upper_open else '1]'}"
        )


# --------------------------------------------------------------------------- extract
@dataclass
class NodeSpec:
    """One node type (label) of the property graph."""

    id: str
    """Property (column) holding the node's key; must be unique within the type."""
    file: str | None = None
    """File or glob under ``extract.root`` (.csv or .parquet); None: ids come from the edges."""
    properties: dict[str, str] = field(default_factory=dict)
    """Properties to read, name -> type (string, float or int)."""
    label: str | None = None
    """Database label of this node type (None: the type's name)."""

    def __post_init__(self) -> None:
        _check_property_types(self.properties)


@dataclass
class EdgeSpec:
    """One edge (relationship) type: ``(src) -[name]-> (dst)``."""

    src: str
    """Source node type."""
    dst: str
    """Destination node type."""
    src_id: str
    """Column of the edge file holding the source node's key (in a database an end is
    found by its node type's ``id`` property; a person-friend-person file needs two
    columns)."""
    dst_id: str
    """Column of the edge file holding the destination node's key."""
    file: str | None = None
    """File or glob under ``extract.root`` (.csv or .parquet)."""
    properties: dict[str, str] = field(default_factory=dict)
    """Edge properties to read, name -> type (string, float or int)."""
    type: str | None = None
    """Database relationship type (None: the edge type's name)."""

    def __post_init__(self) -> None:
        _check_property_types(self.properties)


@dataclass
class Neo4jConfig:
    """How to reach a Neo4j database (source and sink). The password never lives in YAML."""

    uri: str = "bolt://127.0.0.1:7687"
    """bolt://, neo4j://, bolt+s:// or neo4j+s:// address."""
    user: str = "neo4j"
    """User name."""
    password_env: str = "NEO4J_PASSWORD"
    """Environment variable holding the password."""
    password_file: str | None = None
    """File holding the password (a mounted Kubernetes Secret); read when set."""
    database: str = "neo4j"
    """Database name."""
    fetch_rows: int = 20_000
    """Rows fetched per query while extracting (one record of columns per query)."""

    def __post_init__(self) -> None:
        self.check_uri()
        _at_least(self, "neo4j", fetch_rows=1)

    def check_uri(self) -> None:
        """Refuse a scheme the driver must not use (``http://`` opens an HTTP connection in
        neo4j 6.x) and credentials in the URI, without echoing them."""
        uri = str(self.uri or "")
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in NEO4J_SCHEMES:
            raise ConfigError(
                f"neo4j uri {redact_uri(uri)!r}: the scheme must be one of "
                f"{', '.join(s + '://' for s in NEO4J_SCHEMES)}"
            )
        if has_userinfo(uri):
            raise ConfigError(
                f"neo4j uri {redact_uri(uri)!r}: user and password do not belong in the URI; "
                f"set neo4j.user and the password in ${self.password_env} or "
                "neo4j.password_file"
            )


ARANGO_AUTH = ("basic", "jwt", "token")


@dataclass
class ArangoConfig:
    """How to reach an ArangoDB database (source and sink). The password never lives in
    YAML. A node type's collection is its ``label`` (default: the type's name), an edge
    type's its ``type`` (default: the edge's name)."""

    url: str = "http://127.0.0.1:8529"
    """http:// or https:// address of a coordinator or single server."""
    username: str = "root"
    """User name."""
    password_env: str = "ARANGO_PASSWORD"
    """Environment variable holding the password."""
    password_file: str | None = None
    """File holding the password (a mounted Kubernetes Secret); read when set."""
    database: str = "_system"
    """Database name."""
    auth: str = "basic"
    """``basic`` (user and password on every request), ``jwt`` (the password is exchanged
    once for a token at ``/_open/auth``, renewed when it expires) or ``token`` (the secret
    is itself a JWT issued for this user, sent as a bearer token; ``username`` unused)."""
    fetch_rows: int = 20_000
    """Rows per cursor batch while extracting (the memory of one read)."""

    def __post_init__(self) -> None:
        url = str(self.url or "")
        if url.split("://", 1)[0].lower() not in ("http", "https") or "://" not in url:
            raise ConfigError(
                f"arango url {redact_uri(url)!r}: the scheme must be http:// or https://"
            )
        if has_userinfo(url):
            raise ConfigError(
                f"arango url {redact_uri(url)!r}: user and password do not belong in the URL; "
                f"set arango.username and the password in ${self.password_env} or "
                "arango.password_file"
            )
        if self.auth not in ARANGO_AUTH:
            raise ConfigError(f"arango.auth={self.auth!r}: must be one of {', '.join(ARANGO_AUTH)}")
        _at_least(self, "arango", fetch_rows=1)


@dataclass
class GremlinConfig:
    """How to reach an Apache TinkerPop Gremlin Server (source, sink and ``graphrec load``):
    Gremlin Server with TinkerGraph or JanusGraph, Amazon Neptune, Cosmos DB's Gremlin API.
    A node type's vertex label is its ``label`` (default: the type's name), an edge type's
    edge label its ``type``. The password never lives in YAML."""

    url: str = "ws://127.0.0.1:8182/gremlin"
    """ws:// or wss:// endpoint."""
    traversal_source: str = "g"
    """The traversal source the server binds."""
    username: str | None = None
    """User name (None: no authentication)."""
    password_env: str = "GREMLIN_PASSWORD"
    """Environment variable holding the password (read only with a username)."""
    password_file: str | None = None
    """File holding the password (a mounted Kubernetes Secret); read when set."""
    fetch_rows: int = 10_000
    """Results per response frame while extracting."""
    partition_rows: int = 1_000_000
    """Most vertices (or edges) one partition is meant to hold: a label is split into at
    least ``count / partition_rows`` key ranges. The client holds at most
    ``extract.parallelism`` partitions' results at once, whatever the server's pace."""
    timeout_s: float = 120.0
    """Seconds one request may take before it is an error."""

    def __post_init__(self) -> None:
        url = str(self.url or "")
        if url.split("://", 1)[0].lower() not in ("ws", "wss") or "://" not in url:
            raise ConfigError(
                f"gremlin url {redact_uri(url)!r}: the scheme must be ws:// or wss://"
            )
        if has_userinfo(url):
            raise ConfigError(
                f"gremlin url {redact_uri(url)!r}: user and password do not belong in the URL; "
                f"set gremlin.username and the password in ${self.password_env} or "
                "gremlin.password_file"
            )
        _identifier(self.traversal_source, "gremlin.traversal_source")
        _at_least(self, "gremlin", fetch_rows=1, partition_rows=1, timeout_s=1)


@dataclass
class ExtractConfig:
    """Stage 1: read a property graph into Arrow tables."""

    source: str = "files"
    """Which source implementation reads the graph (see ``graphrec.loaders.SOURCES``)."""
    root: str = "data/movielens-small"
    """Folder the file source reads from (relative paths are relative to the working dir)."""
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    """Node types by name."""
    edges: dict[str, EdgeSpec] = field(default_factory=dict)
    """Edge types by name (the relationship type)."""
    batch_rows: int = 65_536
    """Rows per Arrow record batch: bounds the memory of one read."""
    parallelism: int = 2
    """Partitions read concurrently."""
    snapshot_dir: str | None = ".graphrec/snapshots"
    """Where extracted tables are cached as Parquet (None: always re-extract)."""
    neo4j: Neo4jConfig = field(default_factory=Neo4jConfig)
    """Connection, when ``source: neo4j``."""
    arango: ArangoConfig = field(default_factory=ArangoConfig)
    """Connection, when ``source: arango``."""
    gremlin: GremlinConfig = field(default_factory=GremlinConfig)
    """Connection, when ``source: gremlin``."""

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ConfigError("extract.nodes is empty: declare at least one node type")
        if not self.edges:
            raise ConfigError("extract.edges is empty: declare at least one edge type")
        for name, edge in self.edges.items():
            for end in (edge.src, edge.dst):
                if end not in self.nodes:
                    raise ConfigError(
                        f"extract.edges.{name}: node type {end!r} is not in extract.nodes "
                        f"(have: {', '.join(self.nodes)})"
                    )
        _at_least(self, "extract", batch_rows=1, parallelism=1)

    def check_identifiers(self) -> None:
        """Labels, relationship types and property names a database can hold."""
        for ntype, spec in self.nodes.items():
            _identifier(spec.label or ntype, f"extract.nodes.{ntype}.label")
            for prop in [spec.id, *spec.properties]:
                _identifier(prop, f"extract.nodes.{ntype}: property")
        for name, spec in self.edges.items():
            _identifier(spec.type or name, f"extract.edges.{name}.type")
            for prop in [spec.src_id, spec.dst_id, *spec.properties]:
                _identifier(prop, f"extract.edges.{name}: property")


def _identifier(name: str, where: str) -> None:
    if not IDENTIFIER.match(name):  # anchored at both ends (\Z)
        raise ConfigError(f"{where} {name!r} is not a valid database name ([A-Za-z_][A-Za-z0-9_]*)")


# --------------------------------------------------------------------------- build
@dataclass
class FeatureSpec:
    """How one node property becomes input features (``graphrec.graph.encoders``)."""

    property: str
    """The node property to encode."""
    kind: Literal[
        "auto", "numeric", "bucket", "category", "multi_hot", "text", "datetime", "bool"
    ] = "auto"
    """auto: chosen from the column's type and values; numeric: scaled numbers (+ a missing
    indicator); bucket: one-hot quantile buckets; category: one-hot of the most frequent
    values + OTHER; multi_hot: separator-joined categories; text: sentence embedding;
    datetime: year + cyclical month and weekday; bool: 1/0."""
    separator: str | None = None
    """multi_hot: separator between categories (None: ``kind: auto`` detects it among
    ``| ; ,``; ``kind: multi_hot`` uses ``|``)."""
    scaler: Literal["standard", "minmax", "rankgauss"] = "standard"
    """numeric: z-score, min-max to [0, 1], or rank-gauss (empirical CDF to a normal)."""
    buckets: int = 10
    """bucket: number of quantile buckets."""
    max_categories: int = 100
    """category / multi_hot: the most frequent values kept; the rest share OTHER."""
    auto_text_words: int = 3
    """auto: text whose values have more words than this (median) is ``text``, fewer is
    ``category`` (Neptune ML's rule)."""
    model: str = "all-MiniLM-L6-v2"
    """text: sentence-transformers model; the packaged MiniLM by default, or any path."""
    batch_size: int = 256
    """text: sentences per encoder batch."""

    def __post_init__(self) -> None:
        _at_least(
            self, "build.features", batch_size=1, buckets=2, max_categories=1, auto_text_words=0
        )
        if self.separator is not None and not self.separator:
            raise ConfigError("build.features: a separator must not be empty")


@dataclass
class SplitConfig:
    """Train/validation/test split of the target edges."""

    kind: Literal["random", "temporal", "last"] = "random"
    """random: seeded shuffle of all target edges; temporal: each user's latest ``test``
    share is test, the ``val`` share before it validation; last: leave-last-out, each
    user's last ``last`` edges are test and the ``last`` before them validation."""
    val: float = 0.1
    """Fraction of target edges for validation (random, temporal)."""
    test: float = 0.1
    """Fraction of target edges for test (random, temporal)."""
    seed: int = 0
    """Seed of the random split."""
    last: int = 1
    """kind last: edges per user held out for test, and as many for validation. A user
    keeps at least one training edge: with fewer than ``2 * last + 1`` edges, test is
    filled first."""

    def __post_init__(self) -> None:
        _at_least(self, "build.split", last=1)
        if self.val < 0 or self.test < 0 or self.val + self.test >= 1:
            raise ConfigError(
                f"build.split: val ({self.val}) + test ({self.test}) must be in [0, 1)"
            )


@dataclass
class FastRPConfig:
    """Structural FastRP embeddings appended to every node type's features."""

    dim: int = 64
    """Embedding width."""
    weights: list[float] = field(default_factory=lambda: [0.0, 1.0, 1.0, 1.0])
    """Weight of each propagation step (its length is the number of steps)."""
    seed: int = 0
    """Seed of the random projection."""

    def __post_init__(self) -> None:
        _at_least(self, "build.fastrp", dim=1)
        if not self.weights:
            raise ConfigError("build.fastrp.weights: one weight per propagation step, at least one")


@dataclass
class Node2VecConfig:
    """Node2Vec structural embeddings (:mod:`graphrec.graph.node2vec`) appended to the
    features of the projected node types."""

    dim: int = 64
    """Embedding width."""
    walk_length: int = 20
    """Steps per walk."""
    walks_per_node: int = 10
    """Walks started from every node with an edge in the projection, per epoch."""
    p: float = 1.0
    """Return parameter: a step back to the previous node has weight 1/p (small p: walks
    that stay near their start, BFS-like)."""
    q: float = 1.0
    """In-out parameter: a step to a node not adjacent to the previous one has weight 1/q
    (small q: walks that move outward, DFS-like)."""
    window: int = 5
    """Skip-gram context: nodes at most this many steps apart on a walk are positives."""
    negatives: int = 5
    """Noise nodes per positive pair."""
    epochs: int | Literal["auto"] = "auto"
    """Passes of fresh walks from every start; auto: as many as give at least 200 steps
    (a small projection, e.g. DVD-rental's 1,216 films, actors and categories, has 95 steps
    an epoch, too few for Adam to move the vectors far from their start), else 1."""
    batch_size: int = 128
    """Walks per skip-gram step."""
    lr: float = 0.025
    """Adam's learning rate (word2vec's starting rate)."""
    seed: int = 0
    """Seed of the walks, the noise and the initial vectors."""
    node_types: list[str] | None = None
    """The projection's node types (None: all); the DVD-rental tutorial's: film, actor,
    category."""
    edge_types: list[str] | None = None
    """The projection's edge types by name (None: every type joining two projected node
    types); the target edge type contributes its training edges only."""
    where: Literal["graphrec", "database"] = "graphrec"
    """graphrec: computed here from the extracted graph (any source). database: Neo4j's
    Graph Data Science library projects the graph and streams the vectors (``extract.source:
    neo4j`` with GDS installed; the projection must leave the target edge type out, since
    the database holds the held-out edges too)."""

    def __post_init__(self) -> None:
        _at_least(
            self, "build.node2vec", dim=1, walk_length=1, walks_per_node=1, window=1,
            negatives=1, batch_size=1,
        )  # fmt: skip
        if self.epochs != "auto":
            _at_least(self, "build.node2vec", epochs=1)
        for name in ("p", "q", "lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"build.node2vec.{name}={v}: must be a positive number")
        for name in ("node_types", "edge_types"):
            v = getattr(self, name)
            if v is not None and not v:
                raise ConfigError(f"build.node2vec.{name}: an empty list projects nothing")


@dataclass
class BuildConfig:
    """Stage 2: Arrow tables -> PyG HeteroData."""

    target: str = "rates"
    """The edge type to learn and recommend (its src type is the user, dst the item)."""
    label: str | None = "rating"
    """Edge property holding the rating (None: interactions only)."""
    timestamp: str | None = "timestamp"
    """Edge property holding the time (needed by the temporal split): integer epoch
    seconds, or ISO 8601 text (``2022-05-24 22:53:30+01``; without an offset: UTC)."""
    features: dict[str, list[FeatureSpec] | Literal["auto"]] | Literal["auto"] = field(
        default_factory=dict
    )
    """Input features per node type (every node type also gets a learnable embedding): a
    list of properties and how to encode each (``kind: auto`` by default), ``auto`` for a
    node type (each of its declared properties, encoded as auto chooses), or ``auto`` for
    the whole graph (every node type's properties)."""
    fastrp: FastRPConfig | None = None
    """FastRP structural embeddings (None: off), from training edges only."""
    node2vec: Node2VecConfig | None = None
    """Node2Vec structural embeddings (None: off), from training edges only."""
    undirected: bool | None = None
    """The target as undirected pairs (friendships): one edge per pair, messages both ways,
    a held-out pair hidden in both directions, nobody recommended to themselves. None:
    exactly when the target's two ends are the same node type; true needs that."""
    duplicate_edges: Literal["error", "latest"] = "error"
    """Several target edges between the same user and item (repeat rentals, re-ratings):
    error, or keep one per pair, the latest by ``timestamp`` (by row order without one)."""
    reverse_edges: bool = True
    """Add ``rev_<type>`` edges so messages flow both ways."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """How target edges are held out (ignored in final mode)."""
    cache_dir: str = ".graphrec/cache"
    """Where computed text embeddings are cached."""


# --------------------------------------------------------------------------- train
@dataclass
class SamplerConfig:
    """Mini-batch neighbour sampling (PyG LinkNeighborLoader)."""

    num_neighbors: list[int] = field(default_factory=lambda: [10, 5])
    """Fan-out per hop (-1: all neighbours)."""
    batch_size: int = 1024
    """Labelled (seed) edges per mini-batch."""
    backend: Literal["auto", "graphrec", "pyg"] = "auto"
    """auto and graphrec: graphrec's own sampler; pyg: PyG's compiled one (pyg-lib or
    torch-sparse). graphrec's measured 3.3-7.6x torch-sparse's sampled edges/s here
    (``graphrec bench``), so auto does not switch to torch-sparse; pyg-lib is unmeasured."""
    num_workers: int = 0
    """DataLoader worker processes (0: sample in the training process)."""
    temporal: bool = False
    """A training edge's neighbourhood holds only target edges older than itself (by
    ``build.timestamp``; other edge types have no time and are sampled as usual). Each
    edge then gets a subgraph of its own (PyG's temporal, disjoint sampling), so batches
    are larger and slower; what a model learns matches what it sees when it ranks the
    future (the temporal split). Neighbour-sampled models only. With ``train.loss=bce``
    the negatives are random (user, item) pairs given the edge's time, which can be before
    that user's first edge: an empty history positives never have (on MovieLens it lowered
    NDCG@20); ``train.loss=bpr`` keeps the edge's user for its negative."""

    def __post_init__(self) -> None:
        if not self.num_neighbors or any(k == 0 or k < -1 for k in self.num_neighbors):
            raise ConfigError("sampler.num_neighbors: one fan-out per hop, each >= 1 or -1")
        _at_least(self, "sampler", batch_size=1, num_workers=0)


@dataclass
class PinSageConfig:
    """PinSage-style model's own settings (``model.pinsage``)."""

    top_t: int = 10
    """Items in each item's importance neighbourhood (the most visited by random walks)."""
    walks: int = 50
    """Random walks started from each item."""
    walk_length: int = 2
    """Item -> user -> item hops per walk."""

    def __post_init__(self) -> None:
        _at_least(self, "model.pinsage", top_t=1, walks=1, walk_length=1)


@dataclass
class DQNConfig:
    """The DQN recommender's own settings (``model.dqn``; :mod:`graphrec.models.dqn`)."""

    state_window: int = 10
    """The state: the mean item vector of the user's last this many items (in time order)."""
    horizon: int = 10
    """Reward: 1 when the recommended item is among the user's next this many items."""
    gamma: float = 0.9
    """Discount of future rewards in the Q target."""
    hidden: int = 128
    """Width of the Q-network's hidden layer."""
    replay: int = 50_000
    """Transitions kept in the replay memory (the oldest are dropped)."""
    batch_size: int = 256
    """Transitions per gradient step, drawn uniformly from the replay memory."""
    train_every: int = 4
    """One gradient step per this many transitions played."""
    target_every: int = 200
    """Gradient steps between copies of the Q-network into the target network."""
    epsilon_start: float = 1.0
    """Exploration at the first episode: the share of random actions."""
    epsilon_end: float = 0.05
    """Exploration after the decay."""
    epsilon_decay: float = 0.5
    """Share of the run's episodes over which epsilon falls linearly to epsilon_end."""
    node2vec: Node2VecConfig | None = None
    """The item vectors: Node2Vec with these settings, from training edges (None:
    ``build.node2vec``'s settings, else the defaults)."""

    def __post_init__(self) -> None:
        _at_least(
            self, "model.dqn", state_window=1, horizon=1, hidden=1, replay=1, batch_size=1,
            train_every=1, target_every=1,
        )  # fmt: skip
        for name in ("gamma", "epsilon_start", "epsilon_end", "epsilon_decay"):
            _share(self, "model.dqn", name, upper_open=name == "gamma")
        if self.epsilon_end > self.epsilon_start:
            raise ConfigError("model.dqn: epsilon_end must not be above epsilon_start")


@dataclass
class EASEConfig:
    """EASE's own settings (``model.ease``)."""

    lam: float | Literal["auto"] = "auto"
    """L2 regularisation of the item-item weights. ``auto``: chosen on the validation split
    by a geometric search (x4 steps from 10x the mean item degree)."""
    low_label_weight: float | None = None
    """Weight of edges labelled below ``evaluate.positive_threshold`` in the interaction
    matrix (None: ``train.low_label_weight`` where it is not 1, else every edge 1)."""

    def __post_init__(self) -> None:
        if self.lam != "auto":
            _at_least(self, "model.ease", lam=1e-9)
        if self.low_label_weight is not None:
            _share(self, "model.ease", "low_label_weight")


@dataclass
class GFCFConfig:
    """Graph-filter collaborative filtering's own settings (``model.gfcf``)."""

    rank: int = 256
    """Singular vectors of the normalised user-item matrix in the ideal low-pass filter
    (capped below the smaller side of the matrix)."""
    alpha: float | Literal["auto"] = "auto"
    """Weight of the ideal low-pass filter against the linear one. ``auto``: chosen on the
    validation split (x3 steps from 0.3)."""
    linear: bool | Literal["auto"] = "auto"
    """Include the linear filter (a dense items x items matrix). ``auto``: where it fits
    in a quarter of this machine's memory; else the low-pass filter alone."""

    def __post_init__(self) -> None:
        _at_least(self, "model.gfcf", rank=1)
        if self.alpha != "auto":
            _at_least(self, "model.gfcf", alpha=0.0)


@dataclass
class ModelConfig:
    """The encoder and decoder."""

    name: str = "sage"
    """A model of the registry (``graphrec.models.MODELS``): sage: heterogeneous GraphSAGE
    over every edge type, features and neighbour-sampled mini-batches; lightgcn: LightGCN
    on the user-item edges, full graph per step, per-user batches; pinsage: item
    embeddings from content features and random-walk neighbourhoods (item -> user -> item);
    ease and gfcf: closed-form item-item models (no epochs: fit once, their setting chosen
    on validation); popularity: a learned item score; dqn: a Deep Q-Network over each
    user's item sequence (Node2Vec item vectors, episodes instead of batches). Each
    model's own checks run before any work (``graphrec.models.check_model``)."""
    layers: int | None = None
    """Propagation layers (None: one per ``sampler.num_neighbors`` hop)."""
    hidden: int = 64
    """Hidden and output size of every layer."""
    embedding_dim: int = 64
    """Size of the learnable per-node embedding of every node type."""
    dropout: float = 0.0
    """Dropout between layers."""
    aggr: Literal["mean", "max", "sum"] = "mean"
    """SAGE neighbourhood aggregation."""
    item_features: bool = True
    """lightgcn: add a learned linear map of the item features (where the build made any)
    to the items' layer-0 embeddings; false: pure collaborative filtering. (sage and
    pinsage always use the features.)"""
    sparse_embeddings: bool | Literal["auto"] = "auto"
    """Per-node embedding and bias tables get sparse gradients, updated by SparseAdam: a
    step then costs the rows its batch touched, not the whole tables (and DDP exchanges
    only those rows). ``train.weight_decay`` then applies to the dense layers only. Not with
    NCCL (GPU workers), which has no sparse all-reduce. ``auto``: sparse when the graph has
    at least 100,000 nodes and the workers are not GPU workers (measured: 1.7x the
    labelled edges/s at 250k nodes, no difference at 25k, ``graphrec bench``)."""
    pinsage: PinSageConfig = field(default_factory=PinSageConfig)
    """pinsage: its neighbourhood settings."""
    ease: EASEConfig = field(default_factory=EASEConfig)
    """ease: its regularisation."""
    gfcf: GFCFConfig = field(default_factory=GFCFConfig)
    """gfcf: its filters."""
    dqn: DQNConfig = field(default_factory=DQNConfig)
    """dqn: the reinforcement-learning recommender's settings."""
    blend: Literal["none", "auto", "ease", "gfcf"] = "none"
    """Blend the trained ranker (link objective) with a closed-form item-item model fit on
    the same training edges (``graphrec.models.blend``): per-user standardised scores mixed
    with ``blend_weight`` on the partner. ``auto``: EASE where its items x items inverse
    fits in half of this machine's memory, else GF-CF; none: the trained model alone."""
    blend_weight: float | Literal["auto"] = "auto"
    """The partner's share of the blend, 0..1. ``auto``: the best on validation of
    0, 0.1, ..., 1 (0: the trained model alone, 1: the partner alone)."""

    def __post_init__(self) -> None:
        _at_least(self, "model", layers=1, hidden=1, embedding_dim=1)
        _share(self, "model", "dropout", upper_open=True)
        if self.blend_weight != "auto":
            _share(self, "model", "blend_weight")


@dataclass
class TrainConfig:
    """Stage 3: mini-batch training."""

    objective: Literal["rating", "link"] = "rating"
    """rating: regress the label; link: rank observed edges above sampled non-edges."""
    loss: Literal["mse", "weighted_mse", "bce", "bpr", "softmax", "multinomial"] = "mse"
    """rating: mse or weighted_mse (inverse class frequency); link: bce, bpr or (lightgcn,
    pinsage) softmax: cross-entropy of the positive against ``num_negatives`` uniformly
    sampled items shared by the batch (sampled softmax); multinomial (lightgcn, pinsage):
    batches of ``sampler.batch_size`` users, each user's training items against the whole
    catalogue (full softmax: Mult-VAE's multinomial likelihood), averaged per user."""
    epochs: int = 20
    """Passes over the training edges (the best validation epoch is kept)."""
    lr: float = 0.005
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    num_negatives: int = 1
    """link: sampled non-edges per positive edge (uniform over items)."""
    hard_negatives: float = 0.0
    """pinsage with bpr/bce: share of each positive's negatives drawn from the positive
    item's random-walk neighbourhood (items near it the user has no edge to), as PinSage's
    hard negatives; 0: uniform negatives only."""
    embedding_l2: float = 0.0
    """lightgcn, pinsage: L2 penalty on the batch's per-node embeddings (LightGCN: 1e-4)."""
    low_label_weight: float = 1.0
    """Weight of a training edge whose label is below ``evaluate.positive_threshold`` (a
    rating under 4): in the multinomial loss it counts this much as a target, and in
    LightGCN's normalized adjacency it has this weight. 1: every edge counts the same.
    Without ``build.label`` (implicit data) every edge weighs 1 whatever this says."""
    disjoint_ratio: float = 0.0
    """Share of training edges supervised each epoch and kept out of that epoch's message
    graph (redrawn every epoch); 0: supervise every edge with all edges in the graph."""
    patience: int = 5
    """Stop after this many epochs without validation improvement (0: never)."""
    max_batches_per_epoch: int | None = None
    """Cap on mini-batches per epoch (for quick debug runs)."""
    seed: int = 0
    """Seed of model init, sampling and negatives."""
    deterministic: bool = True
    """Train with PyTorch's deterministic algorithms (restored afterwards), so that the same
    seed gives the same model: on a multi-core CPU the backward of tensor indexing otherwise
    accumulates in thread order, and SAGE runs differed by 0.01 NDCG@20 between identical
    runs. No measurable cost on CPU; on CUDA some scatter kernels get slower and ops without a
    deterministic version warn (set ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` for cuBLAS)."""
    threads: int | None = None
    """torch intra-op threads (None: all cores)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model trains and scores: auto picks cuda when a GPU is visible."""
    checkpoint_path: str | None = "runs/checkpoints"
    """Where training checkpoints go: a local folder or a pyarrow filesystem URI
    (``s3://bucket/prefix``); None: no checkpoints (and no resume)."""
    checkpoint_every: int = 1
    """Checkpoint every this many epochs (and after the last)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep."""
    run_id: str | None = None
    """Checkpoint folder name under ``checkpoint_path`` (None: ``<name>-<timestamp>``, or
    with ``resume`` the newest ``<name>-*`` there)."""
    resume: bool = False
    """Continue from the newest checkpoint of ``run_id`` instead of starting afresh."""

    def __post_init__(self) -> None:
        ok = {
            "rating": ("mse", "weighted_mse"),
            "link": ("bce", "bpr", "softmax", "multinomial"),
        }[self.objective]
        if self.loss not in ok:
            raise ConfigError(
                f"train.loss={self.loss!r} does not fit train.objective={self.objective!r}: "
                f"use one of {', '.join(ok)}"
            )
        _at_least(
            self, "train", epochs=1, num_negatives=1, weight_decay=0.0, embedding_l2=0.0,
            patience=0, max_batches_per_epoch=1, threads=1,
        )  # fmt: skip
        if self.lr <= 0:
            raise ConfigError(f"train.lr={self.lr!r}: must be > 0")
        if not 0.0 <= self.disjoint_ratio < 1.0:
            raise ConfigError("train.disjoint_ratio must be in [0, 1)")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ConfigError("train.checkpoint_every and train.keep_checkpoints must be >= 1")
        if self.resume and self.checkpoint_path is None:
            raise ConfigError("train.resume needs train.checkpoint_path (where checkpoints are)")


# --------------------------------------------------------------------------- distributed
@dataclass
class DistributedConfig:
    """Data-parallel training on Ray Train (``workers >= 1``) or in this process (0)."""

    workers: int = 0
    """Ray Train workers (DDP); 0: train in this process, without Ray."""
    use_gpu: bool = False
    """One GPU per worker, NCCL; otherwise CPU workers with gloo."""
    cpus_per_worker: int = 1
    """CPUs reserved per worker; also its torch threads (Ray sets OMP_NUM_THREADS=1)."""
    address: str | None = None
    """Ray cluster to join (``auto``, ``ray://host:10001``); None: ``RAY_ADDRESS`` if set,
    else a local cluster for this job."""
    max_failures: int = 2
    """Restarts of the worker group from the last checkpoint after a worker dies."""

    def __post_init__(self) -> None:
        if self.workers < 0 or self.cpus_per_worker < 1 or self.max_failures < 0:
            raise ConfigError(
                "distributed.workers >= 0, distributed.cpus_per_worker >= 1 and "
                "distributed.max_failures >= 0"
            )


@dataclass
class TuneConfig:
    """Ray Tune hyperparameter search over the same training function (``graphrec tune``)."""

    num_samples: int = 8
    """Trials drawn from the search space."""
    max_concurrent: int | None = None
    """Trials run at once (None: as many as the cluster's CPUs allow)."""
    cpus_per_trial: int = 1
    """CPUs (and torch threads) per trial."""
    grace_period: int = 1
    """ASHA: epochs every trial runs before it may be stopped early."""
    reduction_factor: int = 3
    """ASHA: keep the best 1/reduction_factor at each rung."""
    lr: list[float] = field(default_factory=lambda: [1e-3, 2e-2])
    """Learning rate: log-uniform between these two."""
    hidden: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Hidden size (and embedding size): one of these."""
    fanout: list[int] = field(default_factory=lambda: [5, 10, 20])
    """First-hop fan-out: one of these; later hops halve it (at least 2)."""
    layers: list[int] = field(default_factory=lambda: [1, 2, 3])
    """Message-passing layers (= sampler hops): one of these."""
    storage_path: str = "runs/tune"
    """Where Tune keeps trial results (a folder or a pyarrow filesystem URI)."""

    def __post_init__(self) -> None:
        if len(self.lr) != 2 or not 0 < self.lr[0] <= self.lr[1]:
            raise ConfigError("tune.lr: [low, high] with 0 < low <= high")
        if not self.hidden or not self.fanout or not self.layers:
            raise ConfigError("tune.hidden, tune.fanout and tune.layers need at least one value")
        if self.num_samples < 1 or self.grace_period < 1 or self.reduction_factor < 2:
            raise ConfigError(
                "tune.num_samples >= 1, tune.grace_period >= 1, tune.reduction_factor >= 2"
            )
        _at_least(self, "tune", max_concurrent=1, cpus_per_trial=1)
        for name in ("hidden", "fanout", "layers"):
            if min(getattr(self, name)) < 1:
                raise ConfigError(f"tune.{name}={getattr(self, name)!r}: every value must be >= 1")


# --------------------------------------------------------------------------- evaluate
@dataclass
class EvaluateConfig:
    """Held-out evaluation (split mode only)."""

    k: int = 20
    """Cut-off of Recall@k and NDCG@k."""
    positive_threshold: float = 4.0
    """A held-out edge counts as a positive when its label is >= this."""
    batch_users: int = 2048
    """Users scored per batch in full ranking."""

    def __post_init__(self) -> None:
        _at_least(self, "evaluate", k=1, batch_users=1)


# --------------------------------------------------------------------------- recommend
@dataclass
class RecommendConfig:
    """Stage 4: top-k unseen items for every user."""

    k: int = 10
    """Recommendations per user."""
    batch_users: int = 2048
    """Users scored per batch."""
    method: Literal["exact", "approximate"] = "exact"
    """``exact`` (every item scored) or ``approximate`` (a FAISS IVF index whose probes are
    tuned to ``target_recall`` against exact top-k on a sample of users; the recall reached
    is reported in the run's metrics)."""
    target_recall: float = 0.95
    """``approximate``: recall@k against exact that the index's probes are tuned to reach."""
    index_lists: int | None = None
    """``approximate``: index cells (None: sqrt(items))."""
    scan: Literal["float32", "bfloat16"] = "float32"
    """``exact`` on a CPU: the precision of the first pass over all items, which keeps the
    best chunks of items per user; they are rescored in float32, so the scores written are
    float32 either way. ``bfloat16`` runs the product several times faster on CPUs with
    AMX or AVX512-BF16 (and keeps 4x as many chunks, so that rounding rarely costs an item;
    its agreement with float32 is measured by ``graphrec bench``); elsewhere it can be
    slower."""

    def __post_init__(self) -> None:
        _at_least(self, "recommend", k=1, batch_users=1)
        _at_least(self, "recommend", index_lists=1)
        _share(self, "recommend", "target_recall")


# --------------------------------------------------------------------------- write
@dataclass
class WriteConfig:
    """Stage 5: write recommendations back."""

    sink: str = "parquet"
    """Which sink implementation writes (see ``graphrec.sinks.SINKS``)."""
    run_dir: str | None = None
    """Run folder (None: ``runs/<name>-<timestamp>``)."""
    relationship: str = "RECOMMENDED"
    """Database sinks: relationship type of a recommendation."""
    batch_size: int = 500
    """Database sinks: users per write transaction (all k rows of a user in one)."""
    neo4j: Neo4jConfig | None = None
    """Neo4j sink connection (None: the extract stage's ``extract.neo4j``)."""
    collection: str = "Recommendation_Inferences"
    """ArangoDB sink: the edge collection written (created when missing)."""

    def __post_init__(self) -> None:
        _at_least(self, "write", batch_size=1)


# --------------------------------------------------------------------------- compare
@dataclass
class CompareConfig:
    """``graphrec compare``: graphrec's models against baselines, same splits and seeds."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """One split and one initialisation per seed; the table shows mean ± std over them."""
    splits: list[Literal["random", "temporal", "last"]] = field(default_factory=lambda: ["random"])
    """Split kinds to compare on (fractions and ``last`` from ``build.split``)."""
    baselines: list[
        Literal[
            "popularity", "itemknn", "ease", "ease_rated", "als", "als_rated", "bpr", "bias",
            "biased_mf", "common_neighbours", "adamic_adar", "node2vec_knn",
        ]
    ] = field(
        default_factory=lambda: ["popularity", "itemknn", "ease", "als", "bpr", "bias", "biased_mf"]
    )  # fmt: skip
    """Non-GNN baselines (als_rated, ease_rated, bias and biased_mf need a rating label; ALS
    and BPR the ``implicit`` package). ease: Steck's closed-form item-item model, its
    regularisation chosen on validation (a dense items x items inverse: refused, naming the
    size, where it does not fit in memory). als: factors, regularisation and confidence
    chosen on validation. *_rated: edges labelled below ``evaluate.positive_threshold``
    weigh less (0.1 or 0.3, chosen on validation), the rating information
    ``train.low_label_weight`` gives a GNN. common_neighbours and adamic_adar: the
    friend-of-friend rules, for a target between one node type (skipped otherwise).
    node2vec_knn: items nearest to the mean Node2Vec vector of the user's items, with
    ``build.node2vec``'s settings (or the defaults), not searched."""
    models: dict[str, list[str]] = field(default_factory=dict)
    """graphrec models: name -> dotted overrides of this config (model, train, sampler)."""
    out: str = "bench/results"
    """Where ``quality-<name>.json`` and ``.md`` go."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("compare.seeds: give at least one seed")


# --------------------------------------------------------------------------- job
@dataclass
class JobConfig:
    """The whole job: five stages and their settings."""

    name: str = "graphrec"
    """Run name, used in the run folder."""
    mode: Literal["evaluate", "final"] = "evaluate"
    """evaluate: hold out val/test edges and report metrics; final: train on every edge."""
    final_validation: bool = True
    """final mode: first hold out ``build.split.val`` of the target edges (``build.split.kind``)
    to choose the epoch count, every ``auto`` setting and the blend weight on, then refit on
    every edge with those choices (``graphrec.train.final``); false (or
    ``build.split.val=0``): one fit on every edge with ``train.epochs`` and the settings'
    start values."""
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def __post_init__(self) -> None:
        if not FOLDER_NAME.match(self.name):
            raise ConfigError(
                f"name={self.name!r}: letters, digits, '_', '.' and '-' only (it names the "
                "run folder), not starting with '.' or '-'"
            )
        if self.train.run_id is not None and not FOLDER_NAME.match(self.train.run_id):
            raise ConfigError(
                f"train.run_id={self.train.run_id!r}: letters, digits, '_', '.' and '-' only "
                "(it names a folder under train.checkpoint_path), not starting with '.' or '-'"
            )
        if self.extract.source == "neo4j":
            self.extract.check_identifiers()
        if self.write.sink == "neo4j":
            self.extract.check_identifiers()
            _identifier(self.write.relationship, "write.relationship")
        if self.extract.source == "arango" or self.write.sink == "arango":
            self.extract.check_identifiers()  # collection and attribute names
        if self.write.sink == "arango":
            _identifier(self.write.collection, "write.collection")
        target = self.extract.edges.get(self.build.target)
        if target is None:
            raise ConfigError(
                f"build.target={self.build.target!r} is not an edge type in extract.edges "
                f"(have: {', '.join(self.extract.edges)})"
            )
        for prop, what in ((self.build.label, "label"), (self.build.timestamp, "timestamp")):
            if prop is not None and prop not in target.properties:
                raise ConfigError(
                    f"build.{what}={prop!r} is not a property of edge type "
                    f"{self.build.target!r}: add it to extract.edges.{self.build.target}.properties"
                )
        if self.train.low_label_weight != 1.0:
            if not 0.0 <= self.train.low_label_weight <= 1.0:
                raise ConfigError("train.low_label_weight is a weight: between 0 and 1")
            # without build.label every edge weighs 1: the setting has nothing to weigh, so a
            # config written for rated data runs unchanged on implicit data
        if not 0.0 <= self.train.hard_negatives <= 1.0:
            raise ConfigError("train.hard_negatives is a share: between 0 and 1")
        if self.model.sparse_embeddings is True and self.distributed.use_gpu:
            raise ConfigError(
                "model.sparse_embeddings does not work with distributed.use_gpu (NCCL has no "
                "sparse all-reduce): set model.sparse_embeddings=false"
            )
        if self.distributed.workers > 0 and self.train.checkpoint_path is None:
            raise ConfigError(
                "distributed.workers > 0 needs train.checkpoint_path: checkpoints are how a "
                "distributed run survives a lost worker"
            )
        if self.train.objective == "rating" and self.build.label is None:
            raise ConfigError("train.objective=rating needs build.label (the rating property)")
        if self.build.split.kind in ("temporal", "last") and self.build.timestamp is None:
            raise ConfigError(f"build.split.kind={self.build.split.kind} needs build.timestamp")
        self.build.features = expand_features(self.build.features, self.extract)
        tspec = self.extract.edges.get(self.build.target)
        if self.build.undirected and tspec is not None and tspec.src != tspec.dst:
            raise ConfigError(
                f"build.undirected=true: the target {self.build.target!r} joins {tspec.src} to "
                f"{tspec.dst}; undirected pairs need the same node type at both ends"
            )
        for ntype, specs in self.build.features.items():
            node = self.extract.nodes.get(ntype)
            if node is None:
                raise ConfigError(f"build.features.{ntype}: no such node type in extract.nodes")
            for spec in specs:
                if spec.property not in node.properties:
                    raise ConfigError(
                        f"build.features.{ntype}: property {spec.property!r} is not read: "
                        f"add it to extract.nodes.{ntype}.properties"
                    )


def expand_features(features, extract: ExtractConfig) -> dict[str, list[FeatureSpec]]:
    """``auto`` (the graph or one node type) as one ``kind: auto`` spec per property."""
    if features == "auto":
        features = {t: "auto" for t, node in extract.nodes.items() if node.properties}
    out: dict[str, list[FeatureSpec]] = {}
    for ntype, specs in features.items():
        if specs == "auto":
            node = extract.nodes.get(ntype)
            if node is None:
                raise ConfigError(f"build.features.{ntype}: no such node type in extract.nodes")
            specs = [FeatureSpec(p) for p in node.properties if p != node.id]
        out[ntype] = specs
    return out


# --------------------------------------------------------------------------- parsing
def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> JobConfig:
    """Read a YAML config (or the defaults), apply dotted overrides, return the typed tree."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a folder: name a YAML file")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: byte {exc.start} is not UTF-8 text (save the config as UTF-8)"
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{path}{where}: not valid YAML: {what}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    for item in overrides or []:
        apply_override(data, item)
    return from_dict(JobConfig, data, "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last
    silently, so a typo'd copy of a section would win unseen)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) in a nested dict."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key.path=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
    node[parts[-1]] = value


def to_dict(cfg: Any) -> Any:
    """The config tree as plain data (for metrics.json and checkpoints); any URI userinfo
    is masked (the checks refuse it, this keeps it out of files regardless)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return redact_text(v) if isinstance(v, str) and "://" in v else v

    return clean(dataclasses.asdict(cfg))


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain data, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown config key {_join(where, key)!r}{hint}")
        kwargs[key] = _convert(hints[key], value, _join(where, key))
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:  # the first type the value fits
            try:
                return _convert(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc).split(": expected ", 1)[-1])
        raise ConfigError(f"{where}={value!r}: expected {' or '.join(errors)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}={value!r}: expected one of {', '.join(map(str, args))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, _join(where, k)) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}={value!r}: expected a finite number")
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}={value!r}: expected {tp.__name__}")
        if tp is int and not -INT64 <= value < INT64:
            raise ConfigError(f"{where}={value!r}: expected an integer within int64")
        return value
    return value


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _check_property_types(props: dict[str, str]) -> None:
    for name, typ in props.items():
        if typ not in PROPERTY_TYPES:
            raise ConfigError(
                f"property {name!r} has type {typ!r}: use one of {', '.join(PROPERTY_TYPES)}"
            )
