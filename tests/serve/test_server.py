"""``graphrec serve``: a real uvicorn process on loopback, real HTTP requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import write_tiny_graph
from tests.test_transform import later_graph, trained_run

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body=None, method=None, raw: bytes | None = None):
    """``(status, JSON)`` of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


class Server:
    def __init__(self, run: Path, *args: str) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graphrec", "serve", str(run), "--port", str(self.port),
             "--quiet", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")
            try:
                status, body = call(self.base, "/ready")
                if status == 200:
                    return body
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready in time")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module's read-only requests (a start costs seconds)."""
    tmp_path = tmp_path_factory.mktemp("served")
    tiny_root = tmp_path / "data"
    write_tiny_graph(tiny_root)
    run = trained_run(tiny_root, tmp_path, "lightgcn+ease")
    server = Server(run, "--max-k", "5")
    try:
        yield run, server, server.wait_ready()
    finally:
        server.stop()


def test_known_users_get_the_runs_recommendations(served):
    run, server, ready = served
    assert ready["users"] == 12 and ready["items"] == 20 and ready["max_k"] == 5
    recs = pq.read_table(run / "recommendations.parquet").to_pylist()
    want = [r["item_id"] for r in recs if r["user_id"] == 3]  # the run wrote k=3
    status, body = call(server.base, "/users/3/recommendations?k=3")
    assert status == 200 and body["fallback"] is None
    assert [r["item"] for r in body["recommendations"]] == want
    assert [r["rank"] for r in body["recommendations"]] == [1, 2, 3]
    status, body = call(server.base, "/users/3/recommendations")  # the run's recommend.k
    assert status == 200 and len(body["recommendations"]) == 3


def test_a_new_user_is_answered_from_its_items(served):
    run, server, _ = served
    status, body = call(server.base, "/recommendations", {"items": [101, 103, 105], "k": 4})
    assert status == 200, body
    got = [r["item"] for r in body["recommendations"]]
    assert len(got) == 4 and not {101, 103, 105} & set(got)
    scores = [r["score"] for r in body["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    # a known user's exact history as a new user: the same items as that user's
    ratings = [
        (r["userId"], int(r["movieId"]), float(r["rating"]))
        for r in __import__("csv").DictReader(open(run.parent / "data" / "ratings.csv"))
    ]
    mine = [(m, x) for u, m, x in ratings if u == "5"]
    status, body = call(
        server.base, "/recommendations",
        {"items": [m for m, _ in mine], "ratings": [x for _, x in mine], "k": 3},
    )  # fmt: skip
    status5, known = call(server.base, "/users/5/recommendations?k=3")
    assert status == 200 and status5 == 200
    assert len(set(r["item"] for r in body["recommendations"]) & set(
        r["item"] for r in known["recommendations"])) >= 2  # fmt: skip


@pytest.mark.parametrize(
    "path,body,raw,field,status",
    [
        ("/users/999/recommendations", None, None, "user_id", 404),
        ("/users/abc/recommendations", None, None, "user_id", 404),
        ("/users/3/recommendations?k=0", None, None, "k", 400),
        ("/users/3/recommendations?k=6", None, None, "k", 400),
        ("/users/3/recommendations?k=two", None, None, "k", 400),
        ("/recommendations", None, b"{not json", "body", 400),
        ("/recommendations", [1, 2], None, "body", 400),
        ("/recommendations", {"items": "101"}, None, "items", 400),
        ("/recommendations", {"items": [101, 999]}, None, "items[1]", 400),
        ("/recommendations", {"items": [101], "ratings": [1, 2]}, None, "ratings", 400),
        ("/recommendations", {"items": [101], "ratings": ["x"]}, None, "ratings", 400),
        ("/recommendations", {"items": [101], "colour": 1}, None, "colour", 400),
        ("/recommendations", {"items": [101], "properties": {"age": 3}}, None, "properties", 400),
        ("/recommendations", {"items": [101], "k": 100}, None, "k", 400),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(served, path, body, raw, field, status):
    _, server, _ = served
    got, answer = call(server.base, path, body, raw=raw, method="POST" if raw or body else None)
    assert got == status and answer["field"] == field and answer["error"], answer


def test_metrics_health_and_unknown_users_with_popularity(tiny_root, tmp_path):
    run = trained_run(tiny_root, tmp_path, "sage")
    server = Server(run, "--unknown", "popularity")
    try:
        server.wait_ready()
        assert call(server.base, "/health") == (200, {"status": "ok"})
        status, body = call(server.base, "/users/999/recommendations?k=2")
        assert status == 200 and body["fallback"] == "popularity"
        assert len(body["recommendations"]) == 2
        call(server.base, "/users/3/recommendations?k=0")
        status, text = call(server.base, "/metrics")
        assert status == 200
        assert (
            'graphrec_requests_total{endpoint="/users/{user_id}/recommendations",status="200"}'
            in text
        )
        assert (
            'graphrec_errors_total{endpoint="/users/{user_id}/recommendations",field="k"} 1.0'
            in text
        )
        assert "graphrec_request_seconds_bucket" in text
    finally:
        server.stop()


def test_reload_under_load_drops_no_request(tiny_root, tmp_path):
    run = trained_run(tiny_root, tmp_path, "lightgcn+ease")
    later = later_graph(tiny_root, tmp_path / "later")
    from graphrec.transform import transform_run

    newer = transform_run(
        run, [f"extract.root={later}", f"write.run_dir={tmp_path / 'newer'}"], progress=False
    ).run_dir
    server = Server(run)
    failures, done, stop = [], [0], threading.Event()

    def hammer():
        while not stop.is_set():
            status, body = call(server.base, "/users/3/recommendations?k=3")
            if status != 200:
                failures.append(body)
            done[0] += 1

    try:
        server.wait_ready()
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        status, body = call(server.base, "/admin/reload", {"run": str(newer)})
        assert status == 200 and body["model"] == newer.name and body["previous"] == run.name
        time.sleep(0.5)
        # a folder that is not a run: the error says why, the model keeps serving
        status, bad = call(server.base, "/admin/reload", {"run": str(tmp_path)})
        assert status == 422 and bad["field"] == "run" and "checkpoint.pt" in bad["error"]
        stop.set()
        for t in threads:
            t.join()
        assert not failures and done[0] > 10
        status, ready = call(server.base, "/ready")
        assert ready["model"] == newer.name and ready["users"] == 15
        assert call(server.base, "/users/14/recommendations?k=2")[0] == 200  # a user added later
        # SIGHUP loads the current folder again
        server.proc.send_signal(signal.SIGHUP)
        time.sleep(3)
        status, text = call(server.base, "/metrics")
        assert 'graphrec_reloads_total{outcome="ok"} 3.0' in text
    finally:
        stop.set()
        server.stop()


def test_a_folder_that_is_not_a_run_fails_in_one_line(tmp_path):
    (tmp_path / "x").mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "graphrec", "serve", str(tmp_path / "x")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ},
    )  # fmt: skip
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "checkpoint.pt" in p.stderr


@pytest.mark.parametrize("model", ["ease", "lightgcn", "lightgcn+ease", "gfcf"])
def test_a_folded_in_new_user_matches_the_full_graph_pass(tmp_path, model):
    """The fast path (each model's ``fold_in``, no pass over the graph) ranks a new user as
    the full ``embed_new`` pass does: exactly for the item-item models, and for LightGCN
    up to its items' own vectors, which fold-in leaves as trained."""
    from graphrec.serve.model import ServedModel

    root = tmp_path / "data"
    write_tiny_graph(root)
    served = ServedModel(trained_run(root, tmp_path, model), max_k=5)
    assert served.fold is not None
    for items, ratings in (([101, 103, 105, 107], None), ([102, 110, 111], [5.0, 1.0, 4.5])):
        fast = served.new_node(items, ratings, {}, 5)
        fold, served.fold = served.fold, None
        full = served.new_node(items, ratings, {}, 5)
        served.fold = fold
        assert not set(fast.items) & set(items) and len(fast.items) == 5
        if model in ("ease", "gfcf"):
            assert fast.items == full.items
            assert fast.scores == pytest.approx(full.scores, rel=1e-4, abs=1e-5)
        else:
            assert len(set(fast.items[:3]) & set(full.items[:3])) >= 2, (fast, full)


@pytest.mark.parametrize("model", ["lightgcn", "lightgcn+ease", "ease"])
def test_the_approximate_index_at_full_recall_answers_as_exact_scoring(tmp_path, model):
    """``recommend.method=approximate``: known users' lists and folded-in new users come
    from the FAISS index; tuned to recall 1 they equal exact scoring, and the reached
    recall is reported."""
    from graphrec.serve.model import ServedModel

    root = tmp_path / "data"
    write_tiny_graph(root)
    run = trained_run(root, tmp_path, model)
    exact = ServedModel(run, max_k=5)
    approx = ServedModel(
        run, ["recommend.method=approximate", "recommend.target_recall=1.0"], max_k=5
    )
    assert exact.index is None and approx.index is not None
    assert approx.index_report["recall_at_k"] == 1.0
    ties = model == "ease"  # EASE ties many scores: the order among ties is arbitrary
    for user in exact.user_row:
        a, e = approx.known(user, 5), exact.known(user, 5)
        assert a.scores == pytest.approx(e.scores, abs=1e-4)
        assert ties or a.items == e.items
    for items in ([101, 103, 105, 107], [102, 110, 111]):
        a, e = approx.new_node(items, None, {}, 5), exact.new_node(items, None, {}, 5)
        assert not set(a.items) & set(items) and len(a.items) == 5
        assert a.scores == pytest.approx(e.scores, abs=1e-4)
        assert ties or a.items == e.items
