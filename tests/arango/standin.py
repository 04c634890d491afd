"""A STAND-IN for an ArangoDB server (no ArangoDB server package can be installed here):
the HTTP endpoints graphrec's ArangoDB code calls, answered as ArangoDB 3.12 documents
them, driven in the tests by the real ``python-arango`` client. It is not ArangoDB: it
evaluates only graphrec's own parameterised AQL templates (the same functions the client
builds its queries with, plus the tutorial's one-cursor query that the I/O benchmark
compares against, ``graphrec.benchmark.arango_io.TUTORIAL``) and answers any other query
with a parse error (1501), so a query graphrec changes without changing this stand-in
fails the tests. ``python -m tests.arango.standin`` serves it on a port.

Pages followed (https://docs.arango.ai/arangodb/stable/...):
- ``develop/http-api/queries/aql-queries/``: create a cursor (201; ``batchSize``,
  ``hasMore``, ``id``, ``stream``), read the next batch (``POST /_api/cursor/{id}``, 200),
  delete a cursor (202; 404 with 1600 when unknown);
- ``develop/http-api/collections/``: list collections, document count, revision;
- ``develop/http-api/documents/``: create one document (202), the I/O benchmark's
  one-document-per-request write;
- ``develop/http-api/administration/#get-the-server-version``;
- ``develop/http-api/authentication/``: 401 with errorNum 11 on bad credentials; basic
  auth, and JWT: ``POST /_open/auth`` (no database prefix) answers ``{"jwt": ...}``, an
  HS256 token with ``iss: arangodb``, ``iat``, ``exp`` and ``preferred_username``, then
  sent as ``Authorization: bearer <jwt>``; an expired or foreign token is 401/11;
- ``develop/error-codes/``: the ``{error, code, errorNum, errorMessage}`` body; 1203
  collection not found, 1228 database not found, 1501 query parse error, 1600 cursor not found.

What a real server does that this does not: sharding, the query optimiser (whether a key
range really uses the primary index is checked only on a real server, ``pytest -m arango``
with ``ARANGO_URL``), AQL beyond the templates, and string order (keys are compared
bytewise here, as the primary index does).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from graphrec.benchmark.arango_io import TUTORIAL
from graphrec.connectors.arango import LOOKUP
from graphrec.inspect_arango import SAMPLE
from graphrec.loaders.arango import BOUNDS, edge_query, node_query
from graphrec.sinks.arango import INSERT, REMOVE

MAX_ATTRS = 64


def _templates() -> dict[str, tuple]:
    out: dict[str, tuple] = {BOUNDS: ("bounds", 0, False, False)}
    for name, query in (("lookup", LOOKUP), ("remove", REMOVE), ("insert", INSERT),
                        ("sample", SAMPLE), ("all", TUTORIAL)):  # fmt: skip
        out[query] = (name, 0, False, False)
    for n, lower, upper in itertools.product(range(MAX_ATTRS + 1), (False, True), (False, True)):
        out[node_query(n, lower, upper)] = ("node", n, lower, upper)
        out[edge_query(n, lower, upper)] = ("edge", n, lower, upper)
    return out


class ArangoStandIn:
    """One database of document and edge collections behind a local HTTP port."""

    def __init__(
        self, database: str = "graphrec", username: str = "root", password: str = "pw",
        port: int = 0,
    ) -> None:  # fmt: skip
        self.database, self.username, self.password = database, username, password
        self.collections: dict[str, dict] = {}
        self.cursors: dict[str, list] = {}
        self.transactions: dict[str, dict] = {}
        self.jwt_secret = "stand-in-jwt-secret-of-32-bytes-or-more"
        """The server's JWT signing secret (``--server.jwt-secret`` on a real server)."""
        self.jwt_lifetime = 3600.0
        """Seconds a token from ``/_open/auth`` is valid at least (its ``exp`` is a whole
        second after that)."""
        self.fail_inserts_after: int | None = None
        """Fault injection: INSERT queries after this many succeed fail (HTTP 500)."""
        self.inserts = 0
        self.requests: list[tuple[str, str]] = []
        self.templates = _templates()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ArangoStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- data -------------------------------------------------------------------------------
    def add(self, name: str, docs: list[dict], edge: bool = False) -> None:
        coll = self.collections.setdefault(name, {"type": 3 if edge else 2, "docs": {}, "rev": 0})
        for d in docs:
            coll["docs"][str(d["_key"])] = {
                **d,
                "_key": str(d["_key"]),
                "_id": f"{name}/{d['_key']}",
            }
        coll["rev"] += 1

    def _sorted(self, name: str) -> list[dict]:
        docs = self.collections[name]["docs"]
        return [docs[k] for k in sorted(docs, key=lambda k: k.encode())]

    def _document(self, ref):
        if not isinstance(ref, str) or "/" not in ref:
            return None
        name, key = ref.split("/", 1)
        return self.collections.get(name, {}).get("docs", {}).get(key)

    # -- AQL templates ------------------------------------------------------------------------
    def evaluate(self, query: str, binds: dict, colls: dict | None = None) -> tuple[list, int]:
        """Rows and writes of one template query against ``colls`` (a transaction's
        staged copy, or the committed collections)."""
        colls = self.collections if colls is None else colls
        shape = self.templates.get(query)
        if shape is None:
            raise _Fault(400, 1501, "syntax error: the stand-in knows only graphrec's templates")
        kind, n, lower, upper = shape
        name = binds.get("@c")
        if name not in colls:
            raise _Fault(404, 1203, f"collection or view not found: {name}")
        if kind in ("remove", "insert", "lookup"):
            return self._write_query(kind, name, binds, colls)
        return self._read_query(kind, n, lower, upper, name, binds), 0

    def _write_query(self, kind, name, binds, colls) -> tuple[list, int]:
        docs = colls[name]["docs"]
        if kind == "lookup":
            want = set(binds["ids"])
            return [
                [d.get(binds["k"]), d["_id"]] for d in docs.values() if d.get(binds["k"]) in want
            ], 0
        if kind == "remove":
            froms = set(binds["froms"])
            gone = [
                k
                for k, e in docs.items()
                if e.get("_from") in froms and e.get("model") == binds["model"]
            ]
            for k in gone:
                del docs[k]
            return [], len(gone)
        self.inserts += 1
        if self.fail_inserts_after is not None and self.inserts > self.fail_inserts_after:
            raise _Fault(500, 4, "injected fault: the stand-in fails this insert")
        for r in binds["rows"]:
            key = str(next(self._ids))
            docs[key] = {
                "_key": key, "_id": f"{name}/{key}", "_from": r[0], "_to": r[1], "rank": r[2],
                "score": r[3], "model": binds["model"], "run_id": binds["run"],
            }  # fmt: skip
        colls[name]["rev"] += 1
        return [], len(binds["rows"])

    def _read_query(self, kind, n, lower, upper, name, binds) -> list:
        docs = self._sorted(name)
        if kind == "sample":
            return [dict(d) for d in docs[: int(binds["n"])]]
        if kind == "all":
            return [dict(d) for d in docs]
        if kind == "bounds":
            return [docs[o]["_key"] if 0 <= o < len(docs) else None for o in binds["offsets"]]
        lo, hi = binds.get("lo"), binds.get("hi")
        keep = [
            d for d in docs
            if (not lower or d["_key"].encode() >= lo.encode())
            and (not upper or d["_key"].encode() < hi.encode())
        ]  # fmt: skip
        attrs = [binds[f"a{i}"] for i in range(n)]
        if kind == "node":
            return [[d["_key"], *(d.get(a) for a in attrs)] for d in keep]
        rows: list = []
        for e in keep:
            a, b = self._document(e.get("_from")), self._document(e.get("_to"))
            rows.append([
                e["_key"], e.get("_from"), e.get("_to"),
                None if a is None else a.get(binds["s"]),
                None if b is None else b.get(binds["t"]),
                *(e.get(x) for x in attrs),
            ])  # fmt: skip
        return rows

    # -- HTTP -----------------------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, as a server's do

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""  # always read: the connection is reused
                url = urlsplit(self.path)
                path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
                standin.requests.append((self.command, path))
                try:
                    body = json.loads(raw) if raw else None
                    code, out = standin.route(self.command, path, body, self.headers, query)
                except _Fault as f:
                    code, out = f.code, f.body()
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def token(self, username: str | None = None, lifetime: float | None = None) -> str:
        """A JWT this server accepts (what ``/_open/auth`` answers, or what an operator
        issues for a user with the server's secret)."""
        import jwt

        now = time.time()
        life = self.jwt_lifetime if lifetime is None else lifetime
        claims = {"iss": "arangodb", "iat": int(now), "exp": int(now + life) + 1,
                  "preferred_username": username or self.username}  # fmt: skip
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def _authorised(self, auth: str) -> bool:
        import jwt

        if auth.startswith("Basic "):
            want = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return auth == f"Basic {want}"
        if auth.lower().startswith("bearer "):
            try:
                claims = jwt.decode(
                    auth[7:], self.jwt_secret, algorithms=["HS256"], issuer="arangodb",
                    options={"require": ["exp", "iat"]},
                )  # fmt: skip
            except jwt.PyJWTError:
                return False
            return claims.get("preferred_username") == self.username
        return False

    def route(self, method: str, path: str, body, headers, query=None) -> tuple[int, dict]:
        if path == "/_open/auth" and method == "POST":
            body = body or {}
            if (body.get("username"), body.get("password")) != (self.username, self.password):
                raise _Fault(401, 401, "Wrong credentials")
            return 200, {"jwt": self.token()}
        if not self._authorised(headers.get("authorization", "")):
            raise _Fault(401, 11, "not authorized to execute this request")
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "_db":
            raise _Fault(404, 404, "unknown path")
        if parts[2] != self.database:
            raise _Fault(404, 1228, "database not found")
        api = "/" + "/".join(parts[3:])
        with self._lock:
            return self._api(method, api, body, headers.get("x-arango-trx-id"), query or {})

    def _api(self, method: str, api: str, body, trx_id, query) -> tuple[int, dict]:
        if api == "/_api/transaction/begin" and method == "POST":
            write = body["collections"].get("write", [])
            write = [write] if isinstance(write, str) else write
            missing = [c for c in write if c not in self.collections]
            if missing:
                raise _Fault(404, 1203, f"collection or view not found: {missing[0]}")
            tid = str(next(self._ids))
            # a copy of each written collection's key -> document map (queries add and
            # remove documents, never change one in place), committed by swapping it in
            staged = {c: {**self.collections[c], "docs": dict(self.collections[c]["docs"])}
                      for c in write}  # fmt: skip
            self.transactions[tid] = {"status": "running", "staged": staged}
            return 201, {"error": False, "code": 201, "result": {"id": tid, "status": "running"}}
        if api.startswith("/_api/transaction/"):
            tid = api.split("/")[3]
            t = self.transactions.get(tid)
            if t is None:
                raise _Fault(404, 1655, "transaction not found")
            if method == "PUT":  # commit
                if t["status"] == "aborted":
                    raise _Fault(400, 1654, "transaction aborted")
                if t["status"] == "running":
                    self.collections.update(t["staged"])
                    t["status"] = "committed"
                return 200, {
                    "error": False,
                    "code": 200,
                    "result": {"id": tid, "status": t["status"]},
                }
            if method == "DELETE":  # abort
                if t["status"] == "committed":
                    raise _Fault(400, 1653, "transaction already committed")
                t["status"] = "aborted"
                return 200, {
                    "error": False,
                    "code": 200,
                    "result": {"id": tid, "status": "aborted"},
                }
        if api.startswith("/_api/collection/") and api.count("/") == 3 and method == "DELETE":
            name = api.split("/")[3]
            if self.collections.pop(name, None) is None:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            return 200, {"error": False, "code": 200, "id": "1"}
        if api == "/_api/collection" and method == "POST":
            if body["name"] in self.collections:
                raise _Fault(409, 1207, "duplicate name")
            self.collections[body["name"]] = {"type": body.get("type", 2), "docs": {}, "rev": 0}
            return 200, {
                "error": False,
                "code": 200,
                "name": body["name"],
                "type": body.get("type", 2),
            }
        if api.startswith("/_api/document/") and api.count("/") == 3 and method == "POST":
            name = api.split("/")[3]  # one document (develop/http-api/documents/)
            if name not in self.collections:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            key = str(body.get("_key") or next(self._ids))
            docs = self.collections[name]["docs"]
            if key in docs:
                raise _Fault(409, 1210, "unique constraint violated")
            docs[key] = {**body, "_key": key, "_id": f"{name}/{key}"}
            self.collections[name]["rev"] += 1
            return 202, {"_id": f"{name}/{key}", "_key": key, "_rev": "1"}
        if api == "/_api/import" and method == "POST":
            name = query.get("collection")
            if name not in self.collections:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            docs = self.collections[name]["docs"]
            clash = [d["_key"] for d in body if "_key" in d and str(d["_key"]) in docs]
            if clash and query.get("onDuplicate", "error") == "error":
                raise _Fault(409, 1210, "unique constraint violated")
            for d in body:
                key = str(d["_key"]) if "_key" in d else str(next(self._ids))
                docs[key] = {**d, "_key": key, "_id": f"{name}/{key}"}
            self.collections[name]["rev"] += 1
            n_new = len(body) - len(clash)
            counts = {"created": n_new, "updated": len(clash), "errors": 0, "empty": 0}
            return 201, {"error": False, **counts, "ignored": 0, "details": []}
        truncate = api.startswith("/_api/collection/") and api.endswith("/truncate")
        if truncate and method == "PUT":
            name = api.split("/")[3]
            if name not in self.collections:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            self.collections[name]["docs"].clear()
            c = self.collections[name]
            return 200, {"error": False, "code": 200, "name": name, "type": c["type"], "status": 3,
                         "id": "1", "isSystem": False}  # fmt: skip
        if api.startswith("/_api/gharial"):
            return self._gharial(method, api, body)
        if api == "/_api/index" and method == "POST":
            name = query.get("collection")
            if name not in self.collections:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            return 201, {
                "error": False,
                "code": 201,
                "id": f"{name}/1",
                "isNewlyCreated": True,
                **body,
            }
        if api == "/_api/version" and method == "GET":
            return 200, {"server": "arango", "version": "3.12.4", "license": "community"}
        if api == "/_api/collection" and method == "GET":
            result = [
                {"id": str(i), "name": n, "status": 3, "type": c["type"], "isSystem": False,
                 "globallyUniqueId": f"h{i}"}
                for i, (n, c) in enumerate(self.collections.items(), 1)
            ]  # fmt: skip
            return 200, {"error": False, "code": 200, "result": result}
        if api.startswith("/_api/collection/") and method == "GET":
            _, _, _, name, what = api.split("/")
            if name not in self.collections:
                raise _Fault(404, 1203, f"collection or view not found: {name}")
            c = self.collections[name]
            if what == "count":
                return 200, {"error": False, "code": 200, "name": name, "count": len(c["docs"])}
            if what == "revision":
                return 200, {"error": False, "code": 200, "name": name, "revision": str(c["rev"])}
        if api == "/_api/cursor" and method == "POST":
            colls = None
            if trx_id is not None:
                t = self.transactions.get(trx_id)
                if t is None or t["status"] != "running":
                    raise _Fault(404, 1655, "transaction not found")
                colls = {**self.collections, **t["staged"]}
            rows, writes = self.evaluate(body["query"], body.get("bindVars") or {}, colls)
            size = int(body.get("batchSize") or 1000)
            out = self._batch(None, rows, size)
            out["extra"]["stats"] = {"writesExecuted": writes, "writesIgnored": 0}
            return 201, out
        if api.startswith("/_api/cursor/"):
            cid = api.split("/")[3]
            if cid not in self.cursors:
                raise _Fault(404, 1600, "cursor not found")
            if method == "DELETE":
                del self.cursors[cid]
                return 202, {"error": False, "code": 202, "id": cid}
            if method == "POST":
                rows, size = self.cursors.pop(cid)
                return 200, self._batch(cid, rows, size)
        raise _Fault(404, 404, f"unknown path {api} for {method}")

    def _gharial(self, method: str, api: str, body) -> tuple[int, dict]:
        graphs = self.__dict__.setdefault("graphs", {})
        parts = api.split("/")
        if method == "GET" and len(parts) == 4:
            g = graphs.get(parts[3])
            if g is None:
                raise _Fault(404, 1924, "graph not found")
            return 200, {"error": False, "code": 200, "graph": g}
        if method == "DELETE" and len(parts) == 4:
            if graphs.pop(parts[3], None) is None:
                raise _Fault(404, 1924, "graph not found")
            return 202, {"error": False, "code": 202, "removed": True}
        if method == "POST" and len(parts) == 3:
            if body["name"] in graphs:
                raise _Fault(409, 1925, "graph already exists")
            g = {"_key": body["name"], "_id": f"_graphs/{body['name']}", "_rev": "1",
                 "name": body["name"], "edgeDefinitions": body["edgeDefinitions"],
                 "orphanCollections": []}  # fmt: skip
            graphs[body["name"]] = g
            return 202, {"error": False, "code": 202, "graph": g}
        raise _Fault(404, 404, f"unknown path {api} for {method}")

    def _batch(self, cid, rows: list, size: int) -> dict:
        head, rest = rows[:size], rows[size:]
        out = {"error": False, "code": 201 if cid is None else 200, "result": head,
               "hasMore": bool(rest), "cached": False, "extra": {"stats": {}}}  # fmt: skip
        if rest:
            cid = cid or str(next(self._ids))
            self.cursors[cid] = (rest, size)
            out["id"] = cid
        return out


class _Fault(Exception):
    def __init__(self, code: int, num: int, message: str) -> None:
        super().__init__(message)
        self.code, self.num, self.message = code, num, message

    def body(self) -> dict:
        return {
            "error": True,
            "code": self.code,
            "errorNum": self.num,
            "errorMessage": self.message,
        }


def main() -> None:
    """Serve the stand-in on a port until interrupted, for trying the README's ArangoDB
    commands or the I/O benchmark by hand: ``ARANGO_PASSWORD=... python -m
    tests.arango.standin --port 8529 --database _system``. It is not ArangoDB."""
    import argparse
    import os

    p = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8529)
    p.add_argument("--database", default="_system")
    p.add_argument("--username", default="root")
    a = p.parse_args()
    password = os.environ.get("ARANGO_PASSWORD")
    if not password:
        raise SystemExit("tests.arango.standin: set ARANGO_PASSWORD first")
    with ArangoStandIn(a.database, a.username, password, a.port) as s:
        print(f"ArangoDB STAND-IN (not ArangoDB) at {s.url}, database {a.database}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
