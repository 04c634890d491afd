"""Load test of ``graphrec serve`` on loopback: latency percentiles and requests/s.

``python -m graphrec.benchmark.serve_load --run RUN_DIR [--concurrency 1,8,32,64]
[--seconds 10] [--set recommend.method=approximate ...]``

Starts the server (a real uvicorn process) on the run folder, waits until it is ready,
then for each concurrency keeps that many HTTP/1.1 keep-alive connections busy for
``--seconds``: known users (``GET /users/{id}/recommendations?k=10``, ids drawn at random)
and new users (``POST /recommendations`` with 20 items of a random known user's history).
Reports p50/p95/p99 latency and requests/s per case, saves JSON and a plot. The server and
the load generator share this machine's cores (stated in the JSON next to the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from graphrec.benchmark.results import machine, save, versions


async def _one(reader, writer, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _worker(port: int, make, stop: float, lat: list, bad: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status = await _one(reader, writer, make())
            lat.append(time.perf_counter() - t0)
            if status != 200:
                bad.append(status)
    finally:
        writer.close()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n".encode()


def _post(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def run_case(port: int, make, concurrency: int, seconds: float) -> dict:
    lat: list[float] = []
    bad: list[int] = []

    async def main():
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(port, make, stop, lat, bad) for _ in range(concurrency)))

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": len(bad),
        "requests_per_s": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a run folder (graphrec run / transform)")
    p.add_argument("--concurrency", default="1,8,32,64")
    p.add_argument("--seconds", type=float, default=10.0, help="per concurrency and case")
    p.add_argument("--cases", default="known,new")
    p.add_argument("--out", default="bench/results")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="config override passed to graphrec serve (e.g. recommend.method=approximate)",
    )  # fmt: skip
    a = p.parse_args(argv)
    run = Path(a.run)
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "graphrec", "serve", str(run), *a.set, "--port", str(port),
         "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = _wait(port, server)
        ids = pq.read_table(run / "recommendations.parquet").column("user_id").to_pylist()
        users = sorted(set(ids))
        recs = pq.read_table(run / "recommendations.parquet")
        items = sorted(set(recs.column("item_id").to_pylist()))
        rng = random.Random(0)
        cases = {
            "known": lambda: _get(f"/users/{rng.choice(users)}/recommendations?k=10"),
            "new": lambda: _post(
                "/recommendations", {"items": rng.sample(items, min(20, len(items))), "k": 10}
            ),
        }
        results = {}
        for case in a.cases.split(","):
            results[case] = []
            for c in (int(x) for x in a.concurrency.split(",")):
                row = run_case(port, cases[case], c, a.seconds)
                results[case].append(row)
                print(
                    f"{case:5s} c={c:3d}: {row['requests_per_s']:8.1f} req/s, p50 "
                    f"{row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, p99 "
                    f"{row['p99_ms']:.1f} ms, errors {row['errors']}",
                    flush=True,
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    out = {
        "benchmark": "serve_load",
        "run": run.name,
        "model": ready,
        "overrides": a.set,
        "seconds_per_case": a.seconds,
        "note": "server and load generator on the same machine, sharing its cores",
        "results": results,
        "machine": machine(),
        "versions": versions(),
    }
    path = save(out, "serve-load", a.out)
    _plot(results, path.with_suffix(".png"))


def _wait(port: int, server: subprocess.Popen, timeout: float = 600) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server not ready")


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for case, rows in results.items():
        c = [r["concurrency"] for r in rows]
        axes[0].plot(c, [r["p99_ms"] for r in rows], marker="o", label=f"{case} p99")
        axes[0].plot(c, [r["p50_ms"] for r in rows], marker=".", ls="--", label=f"{case} p50")
        axes[1].plot(c, [r["requests_per_s"] for r in rows], marker="o", label=case)
    axes[0].set(xscale="log", yscale="log", xlabel="concurrency", ylabel="latency (ms)")
    axes[1].set(xscale="log", xlabel="concurrency", ylabel="requests/s")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
