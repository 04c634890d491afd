"""Faults around Neo4j end in one line, with nothing half-written and no secret shown.

Against the real server of ``conftest.py``, on tiny graphs of labels of their own (``S*`` for
the sink, ``L*`` for ``graphrec load``), removed again at the end: interrupts during the
write-back and the load (their ``outcome``), ``graphrec load`` refusing before its first
write, a server that is not Neo4j or goes away mid-run (a loopback TCP proxy that is cut),
and bad connection settings, each through every entry point (source, sink, load, inspect).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import socket
import threading
import time

import neo4j
import pyarrow as pa
import pytest

from graphrec.config import EdgeSpec, ExtractConfig, NodeSpec
from graphrec.connectors.neo4j import Neo4jError, Neo4jFault
from graphrec.errors import ConfigError, DataError, GraphRecError, Interrupted, RunError
from graphrec.inspect_neo4j import format_inspection, inspect_neo4j
from graphrec.loaders import extract
from graphrec.loaders.extract import GraphTables
from graphrec.loaders.neo4j import Neo4jSource, _Chunks
from graphrec.loaders.neo4j_load import load_graph
from graphrec.sinks.neo4j import Neo4jSink

pytestmark = pytest.mark.neo4j

LABELS = ("SUser", "SItem", "LUser", "LMovie", "LFiller", "Odd Label")
K = 3  # recommendations per user in the sink tests
N_USERS = 30


# -- helpers ---------------------------------------------------------------------------------
def run(driver, query: str, **params) -> list[dict]:
    with driver.session() as s:
        return s.run(query, **params).data()


def the_password(cfg) -> str:
    return os.environ[cfg.password_env]


def assert_one_line(exc: BaseException, cfg) -> str:
    text = str(exc)
    assert text and "\n" not in text and text == text.strip()
    assert the_password(cfg) not in text
    assert "Traceback" not in text
    return text


def not_chained(exc: BaseException) -> bool:
    """Raised without a cause, and without a context that a traceback would print."""
    return exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def constraints(driver) -> list[tuple]:
    rows = run(driver, "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties")
    return sorted((r["name"], tuple(r["labelsOrTypes"]), tuple(r["properties"])) for r in rows)


class Proxy:
    """A loopback TCP forwarder to the real server; :meth:`cut` is the server dying: every
    connection drops and the port refuses new ones."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept() (close alone does not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


class FakeServer:
    """Something that is not Neo4j on a loopback port: ``reply`` to the first bytes, close."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.recv(64)
                conn.sendall(self.reply)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


def uri_of(cfg) -> str:
    return cfg.uri


def port_of(cfg) -> int:
    return int(cfg.uri.rsplit(":", 1)[1])


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def own_labels(neo4j_driver):
    """Remove this module's nodes, constraints and indexes before and after."""

    def clean():
        for label in LABELS:
            run(neo4j_driver, f"MATCH (n:`{label}`) DETACH DELETE n")
        for kind, many in (("CONSTRAINT", "CONSTRAINTS"), ("INDEX", "INDEXES")):
            for r in run(neo4j_driver, f"SHOW {many} YIELD name, labelsOrTypes"):
                if set(r["labelsOrTypes"] or ()) & set(LABELS):
                    run(neo4j_driver, f"DROP {kind} `{r['name']}` IF EXISTS")

    clean()
    yield
    clean()


@pytest.fixture
def sink_graph(neo4j_driver):
    """:SUser {uid: 1..30} and :SItem {iid: 1..20}, no recommendations."""
    run(neo4j_driver, "MATCH (n:SUser) DETACH DELETE n")
    run(neo4j_driver, "MATCH (n:SItem) DETACH DELETE n")
    run(neo4j_driver, "UNWIND range(1, $n) AS i CREATE (:SUser {uid: i})", n=N_USERS)
    run(neo4j_driver, "UNWIND range(1, 20) AS i CREATE (:SItem {iid: i})")
    yield


def recs(first_item: int = 1, users=range(1, N_USERS + 1)) -> pa.Table:
    """K recommendations per user: items first_item.., shifted by the user."""
    rows = [(u, (u + first_item + r) % 20 + 1, r + 1) for u in users for r in range(K)]
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "rank": [r[2] for r in rows],
            "score": [1.0 / r[2] for r in rows],
        }
    )


def sink(cfg, run_id: str, batch_size: int = 3, model: str = "m") -> Neo4jSink:
    return Neo4jSink(cfg, ("SUser", "uid"), ("SItem", "iid"), "SREC", model, run_id, batch_size)


def written(driver, model: str = "m") -> dict[int, list[tuple]]:
    """user -> sorted (item, run_id) of its recommendations."""
    rows = run(
        driver,
        "MATCH (u:SUser)-[r:SREC {model: $m}]->(i:SItem) RETURN u.uid AS u, i.iid AS i, "
        "r.run_id AS run",
        m=model,
    )
    out: dict[int, list[tuple]] = {}
    for r in rows:
        out.setdefault(r["u"], []).append((r["i"], r["run"]))
    return {u: sorted(v) for u, v in out.items()}


def load_config(cfg) -> ExtractConfig:
    return ExtractConfig(
        source="neo4j",
        nodes={
            "user": NodeSpec(id="uid", label="LUser"),
            "movie": NodeSpec(id="mid", label="LMovie", properties={"title": "string"}),
        },
        edges={
            "rates": EdgeSpec(
                src="user",
                dst="movie",
                src_id="uid",
                dst_id="mid",
                type="LRATED",
                properties={"rating": "float"},
            )
        },
        parallelism=1,
        neo4j=cfg,
    )


def load_tables() -> GraphTables:
    """30 users, 20 movies, 110 ratings (11 batches of 10)."""
    pairs = [(u, (u * 7 + j) % 20 + 1) for u in range(1, 31) for j in range(4 if u <= 20 else 3)]
    return GraphTables(
        nodes={
            "user": pa.table({"id": pa.array(range(1, 31), pa.int64())}),
            "movie": pa.table(
                {
                    "id": pa.array(range(1, 21), pa.int64()),
                    "title": [f"movie {i}" for i in range(1, 21)],
                }
            ),
        },
        edges={
            "rates": pa.table(
                {
                    "src": pa.array([p[0] for p in pairs], pa.int64()),
                    "dst": pa.array([p[1] for p in pairs], pa.int64()),
                    "rating": [float(p[0] % 5) for p in pairs],
                }
            )
        },
    )


@pytest.fixture
def loaded(neo4j_cfg, neo4j_driver):
    """The tiny graph loaded fresh (constraints kept between tests)."""
    run(neo4j_driver, "MATCH (n:LUser) DETACH DELETE n")
    run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")
    tables = load_tables()
    stats = load_graph(tables, load_config(neo4j_cfg), neo4j_cfg, batch_rows=10, progress=False)
    assert stats["edges:rates"]["rows"] == 110
    return tables


def rated(driver) -> int:
    return run(driver, "MATCH (:LUser)-[r:LRATED]->(:LMovie) RETURN count(r) AS c")[0]["c"]


def fail_on_call(monkeypatch, n: int, exc: BaseException, inside: bool = False):
    """Make the n-th ``execute_write`` raise ``exc``: before it starts, or (``inside``) in
    the transaction, after its query ran and before it commits."""
    original = neo4j.Session.execute_write
    counter = itertools.count(1)  # next() is atomic: load calls this from several threads

    def execute_write(self, fn, *args, **kwargs):
        if next(counter) != n:
            return original(self, fn, *args, **kwargs)
        if not inside:
            raise exc

        def then_stop(tx, *a, **kw):
            fn(tx, *a, **kw)
            raise exc

        return original(self, then_stop, *args, **kwargs)

    monkeypatch.setattr(neo4j.Session, "execute_write", execute_write)


def sigint_main_thread() -> None:
    """A real SIGINT, delivered to the main thread (where Python runs signal handlers)."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


# -- 3. interrupts: the write-back ---------------------------------------------------------------
@pytest.mark.parametrize(
    "stop, signum, inside",
    [
        (Interrupted(signal.SIGTERM), signal.SIGTERM, False),
        (Interrupted(signal.SIGINT), signal.SIGINT, True),  # mid-transaction: rolled back
        (KeyboardInterrupt(), signal.SIGINT, True),  # becomes Interrupted(SIGINT)
    ],
    ids=["sigterm-between-batches", "sigint-inside-a-transaction", "keyboardinterrupt"],
)
def test_sink_interrupted_on_the_third_batch(
    stop, signum, inside, sink_graph, neo4j_cfg, neo4j_driver, monkeypatch, capfd
):
    sink(neo4j_cfg, "old").write(recs(first_item=0))
    before = written(neo4j_driver)
    assert len(before) == N_USERS and all(len(v) == K for v in before.values())

    fail_on_call(monkeypatch, 3, stop, inside)
    capfd.readouterr()
    with pytest.raises(Interrupted) as e:
        sink(neo4j_cfg, "new").write(recs(first_item=5))  # 10 batches of 3 users
    assert e.value.signum == signum and not_chained(e.value)
    assert capfd.readouterr().err == ""  # no traceback, no driver log line
    assert e.value.outcome == (
        "2 of 10 batches were written to neo4j (users 1-6); rerun to finish: every user has "
        "either the previous or the new recommendations"
    )
    now = written(neo4j_driver)
    assert all(len(now[u]) == K and {r for _, r in now[u]} == {"new"} for u in range(1, 7))
    assert all(now[u] == before[u] for u in range(7, N_USERS + 1))  # untouched, not lost

    monkeypatch.undo()
    sink(neo4j_cfg, "rerun").write(recs(first_item=5))
    after = written(neo4j_driver)
    assert sorted(after) == list(range(1, N_USERS + 1))
    for items in after.values():
        assert len(items) == K == len({i for i, _ in items})  # exactly k, no duplicates
        assert {r for _, r in items} == {"rerun"}


def test_sink_interrupted_before_the_first_batch_wrote_nothing(
    sink_graph, neo4j_cfg, neo4j_driver, monkeypatch
):
    sink(neo4j_cfg, "old").write(recs(first_item=0))
    before = written(neo4j_driver)
    fail_on_call(monkeypatch, 1, Interrupted(signal.SIGTERM), inside=True)
    with pytest.raises(Interrupted) as e:
        sink(neo4j_cfg, "new").write(recs(first_item=5))
    assert e.value.outcome == (
        "nothing was written to neo4j; the previous recommendations are intact"
    )
    assert written(neo4j_driver) == before


def test_sink_real_signal_mid_write(sink_graph, neo4j_cfg, neo4j_driver, monkeypatch):
    """A real SIGINT, through a handler like the CLI's, as the 4th batch begins."""
    original = neo4j.Session.execute_write
    calls = {"n": 0}

    def execute_write(self, fn, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            sigint_main_thread()
        return original(self, fn, *args, **kwargs)

    def handler(signum, frame):
        raise Interrupted(signum)

    monkeypatch.setattr(neo4j.Session, "execute_write", execute_write)
    old = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(Interrupted) as e:
            sink(neo4j_cfg, "sig").write(recs())
    finally:
        signal.signal(signal.SIGINT, old)
    assert e.value.outcome.startswith("3 of 10 batches were written to neo4j (users 1-9)")
    assert sorted(written(neo4j_driver)) == list(range(1, 10))


# -- 4. batch sizes and counts -------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_sink_batch_size_below_one_is_refused(neo4j_cfg, size):
    with pytest.raises(ConfigError, match=r"write\.batch_size=.*must be a whole number >= 1"):
        sink(neo4j_cfg, "r", batch_size=size)


def test_sink_that_writes_fewer_rows_than_the_table_fails(
    sink_graph, neo4j_cfg, neo4j_driver, monkeypatch
):
    import graphrec.sinks.neo4j as mod

    full = mod.user_batches
    monkeypatch.setattr(mod, "user_batches", lambda t, b: list(full(t, b))[:-1])
    with pytest.raises(RunError, match=r"wrote 27 of 30 recommendation rows") as e:
        sink(neo4j_cfg, "r").write(recs(users=range(1, 11)))
    assert_one_line(e.value, neo4j_cfg)


# -- endpoints are checked before the first batch ------------------------------------------------
def test_sink_refuses_an_unknown_item_before_writing_any_batch(sink_graph, neo4j_cfg, neo4j_driver):
    sink(neo4j_cfg, "old").write(recs(first_item=0))
    before = written(neo4j_driver)
    table = recs(first_item=5)
    items = table.column("item_id").to_pylist()
    items[-1] = 999  # the last user's last item: before, batches 1-9 were written first
    table = table.set_column(1, "item_id", pa.array(items))
    with pytest.raises(DataError) as e:
        sink(neo4j_cfg, "new").write(table)
    text = assert_one_line(e.value, neo4j_cfg)
    assert text == (
        f"neo4j sink: 1 of 21 item ids found no matching (:SItem {{iid}}) node in neo4j at "
        f"{uri_of(neo4j_cfg)} (e.g. 999); nothing was written"
    )
    assert written(neo4j_driver) == before


def test_sink_ids_of_another_type_than_the_keys(sink_graph, neo4j_cfg, neo4j_driver):
    table = recs(users=[1, 2])
    table = table.set_column(0, "user_id", table.column("user_id").cast(pa.string()))
    with pytest.raises(DataError) as e:
        sink(neo4j_cfg, "r").write(table)
    assert assert_one_line(e.value, neo4j_cfg) == (
        f"neo4j sink: 2 of 2 user ids found no matching (:SUser {{uid}}) node in neo4j at "
        f"{uri_of(neo4j_cfg)} (e.g. '1', '2'); none matched: are the node keys of another "
        "type than string?; nothing was written"
    )


def test_sink_refuses_an_item_that_matches_two_nodes(sink_graph, neo4j_cfg, neo4j_driver):
    run(neo4j_driver, "CREATE (:SItem {iid: 5})")
    with pytest.raises(DataError, match=r"1 item ids match more than one \(:SItem \{iid\}\)"):
        sink(neo4j_cfg, "r").write(recs())
    assert written(neo4j_driver) == {}


# -- 2. graphrec load decides every refusal before its first write -------------------------------
def test_load_refuses_before_writing_anything(loaded, neo4j_cfg, neo4j_driver):
    # the constraint on :LMovie is gone; a load that went ahead would create it again
    run(neo4j_driver, "DROP CONSTRAINT graphrec_LMovie_mid_unique")
    schema = constraints(neo4j_driver)
    titles = run(neo4j_driver, "MATCH (m:LMovie) RETURN m.mid AS id, m.title AS t ORDER BY id")
    tables = load_tables()
    changed = tables.nodes["movie"].set_column(
        1, "title", pa.array(["changed"] * tables.nodes["movie"].num_rows)
    )
    tables.nodes["movie"] = changed
    with pytest.raises(Neo4jError) as e:
        load_graph(tables, load_config(neo4j_cfg), neo4j_cfg, batch_rows=10, progress=False)
    assert assert_one_line(e.value, neo4j_cfg) == (
        f"neo4j at {uri_of(neo4j_cfg)} already has 110 :LRATED relationships: pass --replace "
        "to delete and load them again; nothing was written"
    )
    assert e.value.exit_code == 2
    assert constraints(neo4j_driver) == schema  # no constraint was created
    assert (
        run(neo4j_driver, "MATCH (m:LMovie) RETURN m.mid AS id, m.title AS t ORDER BY id") == titles
    )
    assert rated(neo4j_driver) == 110


def test_load_replace_loads_again_exactly(loaded, neo4j_cfg, neo4j_driver):
    load_graph(
        load_tables(),
        load_config(neo4j_cfg),
        neo4j_cfg,
        batch_rows=7,
        replace=True,
        progress=False,
    )
    assert rated(neo4j_driver) == 110
    assert run(neo4j_driver, "MATCH (n:LMovie) RETURN count(n) AS c")[0]["c"] == 20


def test_load_refuses_a_plain_index_where_its_constraint_goes(neo4j_cfg, neo4j_driver):
    """The sink's index on the same property (a run before the load) blocks the constraint."""
    run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")
    run(neo4j_driver, "MATCH (n:LUser) DETACH DELETE n")
    run(neo4j_driver, "DROP CONSTRAINT graphrec_LMovie_mid_unique IF EXISTS")
    run(neo4j_driver, "CREATE INDEX graphrec_LMovie_mid IF NOT EXISTS FOR (n:LMovie) ON (n.mid)")
    schema = constraints(neo4j_driver)
    try:
        with pytest.raises(Neo4jError) as e:
            load_graph(load_tables(), load_config(neo4j_cfg), neo4j_cfg, progress=False)
        assert assert_one_line(e.value, neo4j_cfg) == (
            f"neo4j at {uri_of(neo4j_cfg)} has index 'graphrec_LMovie_mid' on :LMovie(mid), "
            "so the uniqueness constraint graphrec load needs there cannot be created: drop it "
            "first (DROP INDEX `graphrec_LMovie_mid`); nothing was written"
        )
        assert constraints(neo4j_driver) == schema
        assert run(neo4j_driver, "MATCH (n:LUser) RETURN count(n) AS c")[0]["c"] == 0
    finally:
        run(neo4j_driver, "DROP INDEX graphrec_LMovie_mid IF EXISTS")


def test_load_refuses_duplicate_keys_already_in_the_database(neo4j_cfg, neo4j_driver):
    run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")
    run(neo4j_driver, "MATCH (n:LUser) DETACH DELETE n")
    run(neo4j_driver, "DROP CONSTRAINT graphrec_LMovie_mid_unique IF EXISTS")
    run(neo4j_driver, "CREATE (:LMovie {mid: 3}), (:LMovie {mid: 3})")
    try:
        with pytest.raises(Neo4jError) as e:
            load_graph(load_tables(), load_config(neo4j_cfg), neo4j_cfg, progress=False)
        assert assert_one_line(e.value, neo4j_cfg) == (
            f"neo4j at {uri_of(neo4j_cfg)} already has 2 :LMovie nodes with mid = 3, so the "
            "uniqueness constraint on :LMovie(mid) cannot be created: remove the duplicates "
            "first; nothing was written"
        )
        assert run(neo4j_driver, "MATCH (n:LUser) RETURN count(n) AS c")[0]["c"] == 0
    finally:
        run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")


def test_an_edge_end_is_found_by_its_node_key_whatever_the_file_column(neo4j_cfg, neo4j_driver):
    """src_id/dst_id name the edge file's columns (a person-friend-person file needs two);
    in Neo4j an end is always matched by its node's key property."""
    ecfg = load_config(neo4j_cfg)
    ecfg.edges["rates"] = dataclasses.replace(ecfg.edges["rates"], dst_id="movie_id")
    try:
        load_graph(load_tables(), ecfg, neo4j_cfg, progress=False)
        got = run(neo4j_driver, "MATCH (:LUser)-[r:LRATED]->(m:LMovie) RETURN count(r) AS c")
        assert got[0]["c"] == 110
    finally:
        run(neo4j_driver, "MATCH (n:LUser) DETACH DELETE n")
        run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")


@pytest.mark.parametrize("kwargs", [{"batch_rows": 0}, {"parallelism": 0}])
def test_load_batch_settings_below_one_are_refused(neo4j_cfg, kwargs):
    with pytest.raises(ConfigError, match=r"must be a whole number >= 1"):
        load_graph(load_tables(), load_config(neo4j_cfg), neo4j_cfg, progress=False, **kwargs)


# -- 3. interrupts: graphrec load ---------------------------------------------------------------
@pytest.mark.parametrize("parallelism", [1, 3])
def test_load_interrupted_says_what_was_written(
    parallelism, loaded, neo4j_cfg, neo4j_driver, monkeypatch, capfd
):
    # calls: 3 batches of :LUser, 2 of :LMovie, then 11 of [:LRATED]: stop in the 3rd
    fail_on_call(monkeypatch, 3 + 2 + 3, Interrupted(signal.SIGTERM), inside=True)
    with pytest.raises(Interrupted) as e:
        load_graph(
            load_tables(),
            load_config(neo4j_cfg),
            neo4j_cfg,
            batch_rows=10,
            parallelism=parallelism,
            replace=True,
            progress=False,
        )
    assert not_chained(e.value) and e.value.signum == signal.SIGTERM
    n = rated(neo4j_driver)
    assert n % 10 == 0  # whole batches only
    assert e.value.outcome == (
        f"nodes of :LUser, nodes of :LMovie and {n // 10} of 11 batches of [:LRATED] were "
        "written; the old [:LRATED] relationships were deleted; rerun with --replace to load "
        "again"
    )
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("graphrec-load")]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err

    monkeypatch.undo()
    load_graph(
        load_tables(),
        load_config(neo4j_cfg),
        neo4j_cfg,
        batch_rows=10,
        replace=True,
        progress=False,
    )
    assert rated(neo4j_driver) == 110


def test_load_real_signal_waits_for_the_running_batch(loaded, neo4j_cfg, neo4j_driver, monkeypatch):
    """SIGINT reaches the main thread while a worker writes batch 3: batches not started
    are cancelled, the running one finishes, and the outcome counts it."""
    original = neo4j.Session.execute_write
    calls = {"n": 0}

    def execute_write(self, fn, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3 + 2 + 3:  # a worker, in the 3rd relationship batch
            sigint_main_thread()
            time.sleep(0.3)
        return original(self, fn, *args, **kwargs)

    monkeypatch.setattr(neo4j.Session, "execute_write", execute_write)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt
    try:
        with pytest.raises(Interrupted) as e:
            load_graph(
                load_tables(),
                load_config(neo4j_cfg),
                neo4j_cfg,
                batch_rows=10,
                replace=True,
                progress=False,
            )
    finally:
        signal.signal(signal.SIGINT, old)
    assert e.value.signum == signal.SIGINT and not_chained(e.value)
    assert "and 3 of 11 batches of [:LRATED] were written" in e.value.outcome
    assert rated(neo4j_driver) == 30
    assert calls["n"] == 3 + 2 + 3  # nothing started after the signal


# -- 5. the server goes away mid-run ------------------------------------------------------------
def test_server_gone_mid_extract(loaded, neo4j_cfg, monkeypatch):
    proxy = Proxy(port_of(neo4j_cfg))
    cfg = dataclasses.replace(neo4j_cfg, fetch_rows=10)
    cfg.uri = f"bolt://127.0.0.1:{proxy.port}"
    source = Neo4jSource(load_config(cfg))
    original = _Chunks.fetch
    calls = {"n": 0}

    def fetch(self, query, params):
        calls["n"] += 1
        if calls["n"] == 3:
            proxy.cut()
        return original(self, query, params)

    monkeypatch.setattr(_Chunks, "fetch", fetch)
    monkeypatch.setattr("graphrec.loaders.neo4j.time.sleep", lambda s: None)
    try:
        with pytest.raises(Neo4jFault) as e:
            extract(source, progress=False)
    finally:
        source.close()
        proxy.cut()
    text = assert_one_line(e.value, neo4j_cfg)
    assert text.startswith(f"neo4j at bolt://127.0.0.1:{proxy.port} is unreachable: ")
    assert "(while reading neo4j :LUser (node ids" in text
    assert e.value.exit_code == 1 and isinstance(e.value, RunError)


def test_extract_reads_a_label_whose_ids_have_gaps(neo4j_cfg, neo4j_driver):
    """Chunks of node ids that hold no node of the label (other labels' ids between) are
    empty chunks: before, such a chunk returned no record at all and the read crashed."""
    run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")
    run(
        neo4j_driver,
        "UNWIND range(1, 40) AS i CREATE (n:LFiller {mid: i}) WITH n, i WHERE i <= 5 OR i > 35 "
        "REMOVE n:LFiller SET n:LMovie, n.title = 'm' + i",
    )
    ids = [r["i"] for r in run(neo4j_driver, "MATCH (n:LMovie) RETURN id(n) AS i ORDER BY i")]
    assert len(ids) == 10 and ids[-1] - ids[0] > 9  # ids of :LFiller lie between
    source = Neo4jSource(load_config(dataclasses.replace(neo4j_cfg, fetch_rows=1)))
    try:
        parts = source.partitions("node", "movie")
        got = sorted(v for p in parts for b in source.read(p) for v in b.column("id").to_pylist())
    finally:
        source.close()
        run(neo4j_driver, "MATCH (n:LFiller) DELETE n")
        run(neo4j_driver, "MATCH (n:LMovie) DETACH DELETE n")
    assert got == [1, 2, 3, 4, 5, 36, 37, 38, 39, 40]


def test_server_gone_mid_write_back(sink_graph, neo4j_cfg, neo4j_driver, monkeypatch):
    proxy = Proxy(port_of(neo4j_cfg))
    cfg = dataclasses.replace(neo4j_cfg)
    cfg.uri = f"bolt://127.0.0.1:{proxy.port}"
    real_driver = neo4j.GraphDatabase.driver
    monkeypatch.setattr(  # the driver retries a lost server for 30 s by default
        neo4j.GraphDatabase,
        "driver",
        lambda *a, **kw: real_driver(*a, max_transaction_retry_time=0.5, **kw),
    )
    original = neo4j.Session.execute_write
    calls = {"n": 0}

    def execute_write(self, fn, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            proxy.cut()
        return original(self, fn, *args, **kwargs)

    monkeypatch.setattr(neo4j.Session, "execute_write", execute_write)
    try:
        with pytest.raises(Neo4jFault) as e:
            sink(cfg, "new").write(recs())
    finally:
        proxy.cut()
    text = assert_one_line(e.value, neo4j_cfg)
    assert text.startswith(f"neo4j at {cfg.uri} is unreachable: ")
    assert text.endswith(
        "(while writing recommendations); 2 of 10 batches were written to neo4j (users 1-6); "
        "rerun to finish: every user has either the previous or the new recommendations"
    )
    assert sorted(written(neo4j_driver)) == list(range(1, 7))


# -- 1 and 5. bad connection settings, through every entry point --------------------------------
@pytest.fixture(scope="module")
def fakes():
    servers = {
        "junk": FakeServer(b"hello, this is not bolt\r\n"),
        "http": FakeServer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        "closes": FakeServer(b""),
    }
    yield servers
    for s in servers.values():
        s.close()


def _set(cfg, **changes):
    """Change fields after construction (as ``graphrec inspect --uri`` does), so the
    connector's own checks are what is tested, not the config's."""
    cfg = dataclasses.replace(cfg)
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def bad_settings(case: str, cfg, tmp_path, fakes, monkeypatch):
    if case == "password_file is a folder":
        return (
            _set(cfg, password_file=str(tmp_path)),
            ConfigError,
            (
                f"neo4j password_file '{tmp_path}' is a folder; name the file that holds the "
                "password (the Secret's key inside the mounted folder)"
            ),
        )
    if case == "password_file is empty":
        (tmp_path / "pw").write_text("\n")
        return (
            _set(cfg, password_file=str(tmp_path / "pw")),
            ConfigError,
            (f"neo4j password_file '{tmp_path / 'pw'}' is empty"),
        )
    if case == "password_file is not text":
        (tmp_path / "pw").write_bytes(b"\xff\xfe\x00secret")
        return (
            _set(cfg, password_file=str(tmp_path / "pw")),
            ConfigError,
            (f"neo4j password_file '{tmp_path / 'pw'}' is not UTF-8 text"),
        )
    if case == "password variable is empty":
        monkeypatch.setenv("GRAPHREC_TEST_EMPTY_PW", "")
        return (
            _set(cfg, password_env="GRAPHREC_TEST_EMPTY_PW"),
            ConfigError,
            ("no Neo4j password: the environment variable GRAPHREC_TEST_EMPTY_PW is empty"),
        )
    if case == "wrong database":
        return (
            _set(cfg, database="nosuchdb"),
            Neo4jError,
            (f"neo4j at {cfg.uri} has no database 'nosuchdb' (check neo4j.database)"),
        )
    if case == "userinfo in the uri":
        secret_uri = cfg.uri.replace("bolt://", "bolt://neo4j:SECRET-IN-URI@")
        return (
            _set(cfg, uri=secret_uri),
            ConfigError,
            (
                f"neo4j uri '{cfg.uri.replace('bolt://', 'bolt://***@')}': user and password do "
                f"not belong in the URI; set neo4j.user and the password in ${cfg.password_env} "
                "or neo4j.password_file"
            ),
        )
    if case == "http scheme":
        http = cfg.uri.replace("bolt://", "http://")
        return (
            _set(cfg, uri=http),
            ConfigError,
            (
                f"neo4j uri '{http}': the scheme must be one of bolt://, bolt+s://, bolt+ssc://, "
                "neo4j://, neo4j+s://, neo4j+ssc://"
            ),
        )
    if case == "port is not a number":  # (the resolver's reason follows; it varies by OS)
        return (
            _set(cfg, uri="bolt://127.0.0.1:notaport"),
            ConfigError,
            (
                "neo4j uri 'bolt://127.0.0.1:notaport': Failed to DNS resolve address "
                "127.0.0.1:notaport: "
            ),
        )
    if case == "not a neo4j server":
        uri = f"bolt://127.0.0.1:{fakes['junk'].port}"
        return (
            _set(cfg, uri=uri),
            Neo4jError,
            (
                f"neo4j at {uri} is not a Neo4j server: what answers there does not speak Bolt "
                "(check the host and port; Bolt is usually port 7687)"
            ),
        )
    if case == "an http server":
        uri = f"bolt://127.0.0.1:{fakes['http'].port}"
        return (
            _set(cfg, uri=uri),
            Neo4jError,
            (
                f"neo4j at {uri} is not a Bolt server: it answers HTTP (is this the browser port "
                "7474? Bolt is usually port 7687)"
            ),
        )
    if case == "a server that hangs up":
        uri = f"bolt://127.0.0.1:{fakes['closes'].port}"
        return (
            _set(cfg, uri=uri),
            Neo4jFault,
            (f"neo4j at {uri} is unreachable: Couldn't connect to {uri[len('bolt://') :]}"),
        )
    raise AssertionError(case)


PREFIX_ONLY = ("port is not a number", "a server that hangs up")
CASES = [
    "password_file is a folder",
    "password_file is empty",
    "password_file is not text",
    "password variable is empty",
    "wrong database",
    "userinfo in the uri",
    "http scheme",
    "port is not a number",
    "not a neo4j server",
    "an http server",
    "a server that hangs up",
]


def _through(entry: str, cfg):
    if entry == "source":
        return Neo4jSource(load_config(cfg)).partitions("node", "movie")
    if entry == "sink":
        return sink(cfg, "r").write(recs(users=[1]))
    if entry == "load":
        return load_graph(load_tables(), load_config(cfg), cfg, progress=False)
    return inspect_neo4j(cfg)


@pytest.mark.parametrize("entry", ["source", "sink", "load", "inspect"])
@pytest.mark.parametrize("case", CASES)
def test_bad_connection_settings_end_in_one_line(
    case, entry, neo4j_cfg, tmp_path, fakes, monkeypatch
):
    cfg, kind, message = bad_settings(case, neo4j_cfg, tmp_path, fakes, monkeypatch)
    with pytest.raises(GraphRecError) as e:
        _through(entry, cfg)
    assert type(e.value) is kind and not_chained(e.value)
    text = assert_one_line(e.value, neo4j_cfg)
    assert "SECRET-IN-URI" not in text
    if case in PREFIX_ONLY:
        assert text.startswith(message)
    else:
        assert text == message
    assert e.value.exit_code == (1 if kind is Neo4jFault else 2)


@pytest.mark.parametrize(
    "uri",
    ["bolt://neo4j:SECRET-IN-URI@127.0.0.1:7687", "bolt://127.0.0.1:7687?password=SECRET-IN-URI"],
)
def test_the_drivers_own_uri_errors_are_redacted(uri, neo4j_cfg, monkeypatch):
    """With graphrec's own URI checks out of the way, the driver refuses the URI and echoes
    it in its message: the message that reaches the user is still without the secret."""
    from graphrec.connectors import neo4j as connector

    monkeypatch.setattr(connector, "check_uri", lambda cfg: None)
    with pytest.raises(ConfigError) as e:
        connector.connect(_set(neo4j_cfg, uri=uri))
    text = assert_one_line(e.value, neo4j_cfg)
    assert "SECRET-IN-URI" not in text and "***" in text


def test_inspect_cli_never_shows_the_password_of_a_uri(capsys):
    from graphrec.cli import main

    rc = main(["inspect", "--uri", "bolt://neo4j:SECRET@127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 2 and "SECRET" not in err
    assert err.startswith("graphrec: error: ") and err.count("\n") == 1


def test_inspect_lists_names_that_config_could_not_use(neo4j_cfg, neo4j_driver):
    run(neo4j_driver, "CREATE (:`Odd Label` {`odd key`: 1})")
    info = inspect_neo4j(neo4j_cfg)
    assert info["labels"]["Odd Label"]["count"] == 1
    assert info["uri"] == neo4j_cfg.uri
    assert "Odd Label" in format_inspection(info)


def test_driver_text_is_one_line_without_userinfo_or_the_password(neo4j_cfg):
    from graphrec.connectors.neo4j import scrub

    text = f"failed for bolt://neo4j:x@h:1\n  while using {the_password(neo4j_cfg)}\n"
    assert scrub(text, neo4j_cfg) == "failed for bolt://***@h:1 while using ***"
