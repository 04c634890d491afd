"""New-node inference measured: ``graphrec transform`` against a full retrain and popularity.

``python -m graphrec.benchmark.inductive [--config configs/movielens-link.yaml] [--seed 0]``

On a MovieLens-shaped config (user -rates-> item files with a rating):

1. ``--users`` of the users (default 10%) are held out entirely, and ``--items`` of the items
   lose every edge; the model is trained on the rest (``graphrec train``'s evaluate run
   with no test part: early stopping and every ``auto`` choice on its validation split).
2. The graph "now" adds the held-out users back with 80% of their edges (their known
   history; the other 20% are their test edges) and the held-out items as nodes with
   their content features and no edges.
3. ``transform`` embeds them with the trained model (``--only-new``); a retrain runs the
   same job on the graph "now"; popularity counts the edges of the graph "now".

Reported, for the new users: NDCG@20 (and recall, hit rate) of each on their test edges
(positives: rated at least ``evaluate.positive_threshold``), every item they have no edge
to ranked; both wall times (extract to write-back, the same stages). For the new items:
for the known users with a test edge to one, the new items ranked among themselves by the
transformed model (content only), beside their expected value under random order.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import torch

from graphrec.benchmark.results import machine, save, versions
from graphrec.config import JobConfig, load_config
from graphrec.job import run_job
from graphrec.ranking.metrics import ranking_metrics
from graphrec.transform import transform_run

K = 20


def split_files(cfg: JobConfig, folder: Path, users: float, items: float, seed: int) -> dict:
    """``folder/train`` and ``folder/now`` (copies of the config's files with the held-out
    nodes' edges removed as described above) and the held-out edges."""
    e = cfg.extract.edges[cfg.build.target]
    root = Path(cfg.extract.root)
    ratings = pcsv.read_csv(root / e.file)
    rng = np.random.default_rng(seed)
    u_col, i_col = ratings.column(e.src_id).to_numpy(), ratings.column(e.dst_id).to_numpy()
    all_users, all_items = np.unique(u_col), np.unique(i_col)
    new_users = rng.choice(all_users, max(1, round(users * len(all_users))), replace=False)
    new_items = rng.choice(all_items, max(1, round(items * len(all_items))), replace=False)
    of_new_user, of_new_item = np.isin(u_col, new_users), np.isin(i_col, new_items)
    test = of_new_user & ~of_new_item & (rng.random(len(u_col)) < 0.2)  # their 20%
    keep_train = ~of_new_user & ~of_new_item
    keep_now = keep_train | (of_new_user & ~of_new_item & ~test)
    for name, keep in (("train", keep_train), ("now", keep_now)):
        out = folder / name
        out.mkdir(parents=True)
        for f in root.iterdir():  # the node files (items keep their content) as they are
            if f.is_file() and f.name != e.file:
                (out / f.name).symlink_to(f.resolve())
        pcsv.write_csv(ratings.filter(pa.array(keep)), out / e.file)
    label = cfg.build.label
    item_test = of_new_item & ~of_new_user
    return {
        "new_users": new_users,
        "new_items": new_items,
        "user_test": ratings.filter(pa.array(test)),
        "item_test": ratings.filter(pa.array(item_test)),
        "label": label,
        "edges": {"all": len(u_col), "train": int(keep_train.sum()), "now": int(keep_now.sum())},
    }


def score_recs(recs: pa.Table, test: pa.Table, cfg: JobConfig, users, items) -> dict:
    """Ranking metrics at ``K`` of ``recs`` (user, item, rank) on ``test``'s positives."""
    e = cfg.extract.edges[cfg.build.target]
    threshold = cfg.evaluate.positive_threshold
    if cfg.build.label:
        test = test.filter(pc.greater_equal(test.column(cfg.build.label), threshold))
    u_index = {int(u): n for n, u in enumerate(users)}
    i_index = {int(i): n for n, i in enumerate(items)}
    top = torch.full((len(users), K), -1, dtype=torch.long)
    for u, i, r in zip(
        *(recs.column(c).to_pylist() for c in ("user_id", "item_id", "rank")), strict=True
    ):
        if int(u) in u_index and r <= K and int(i) in i_index:
            top[u_index[int(u)], r - 1] = i_index[int(i)]
    pu = torch.tensor([u_index[int(u)] for u in test.column(e.src_id).to_pylist()])
    pi = torch.tensor([i_index.get(int(i), -1) for i in test.column(e.dst_id).to_pylist()])
    ok = pi >= 0
    return ranking_metrics(top, pu[ok], pi[ok], len(items), K)


def popularity_recs(now: Path, cfg: JobConfig, users) -> pa.Table:
    """Top-``K`` unseen items by edge count in the graph "now", for ``users``."""
    e = cfg.extract.edges[cfg.build.target]
    ratings = pcsv.read_csv(now / e.file)
    u, i = ratings.column(e.src_id).to_numpy(), ratings.column(e.dst_id).to_numpy()
    items, counts = np.unique(i, return_counts=True)
    order = items[np.lexsort((items, -counts))]
    rows = {"user_id": [], "item_id": [], "rank": []}
    for user in users:
        seen = set(i[u == user].tolist())
        best = [x for x in order[: K + len(seen)] if x not in seen][:K]
        rows["user_id"] += [int(user)] * len(best)
        rows["item_id"] += [int(x) for x in best]
        rows["rank"] += list(range(1, len(best) + 1))
    return pa.table(rows)


def item_cold_start(run_dir: Path, split: dict, cfg: JobConfig, now: Path) -> dict:
    """The new items ranked among themselves for each known user with a test edge to one,
    by the transformed model's scores (content features only), beside random order."""
    e = cfg.extract.edges[cfg.build.target]
    from graphrec.graph.hetero import message_graph
    from graphrec.transform import load_current, read_run, run_config

    run = read_run(run_dir)
    tcfg = run_config(run, [f"extract.root={now}"])
    graph, _, model, can = load_current(run, tcfg)
    if not can:
        return {"skipped": f"model.name={tcfg.model.name} cannot score new items"}
    uv, iv = model.vectors(message_graph(graph, None, tcfg.build.reverse_edges).to(model.device))
    test = split["item_test"]
    if cfg.build.label:
        thr = cfg.evaluate.positive_threshold
        test = test.filter(pc.greater_equal(test.column(cfg.build.label), thr))
    user_ids = graph.node_ids[graph.user_type].to_pylist()
    item_ids = graph.node_ids[graph.item_type].to_pylist()
    u_row = {u: n for n, u in enumerate(user_ids)}
    new_cols = torch.tensor([item_ids.index(int(i)) for i in split["new_items"]])
    col_of = {int(i): n for n, i in enumerate(split["new_items"])}
    pu_raw = [u_row[int(u)] for u in test.column(e.src_id).to_pylist()]
    users = sorted(set(pu_raw))
    local = {u: n for n, u in enumerate(users)}
    scores = uv[torch.tensor(users)].float() @ iv[new_cols].float().t()
    k = min(K, len(new_cols))
    top = torch.topk(scores, k, dim=1).indices
    pu = torch.tensor([local[u] for u in pu_raw])
    pi = torch.tensor([col_of[int(i)] for i in test.column(e.dst_id).to_pylist()])
    got = ranking_metrics(top, pu, pi, len(new_cols), k)
    gen = torch.Generator().manual_seed(0)
    rand = [
        ranking_metrics(
            torch.stack([torch.randperm(len(new_cols), generator=gen)[:k] for _ in users]),
            pu, pi, len(new_cols), k,
        )[f"ndcg@{k}"]
        for _ in range(20)
    ]  # fmt: skip
    return {
        "new_items": len(new_cols),
        "users": got["users"],
        f"transform_ndcg@{k}": got[f"ndcg@{k}"],
        f"random_ndcg@{k}": float(np.mean(rand)),
        "ratio_to_random": got[f"ndcg@{k}"] / float(np.mean(rand)),
    }


def measure(config: str, users: float, items: float, seed: int, overrides: list[str]) -> dict:
    cfg = load_config(config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        split = split_files(cfg, tmp, users, items, seed)
        common = [*overrides, "mode=evaluate", "build.split.test=0.0", f"recommend.k={K}",
                  f"build.split.seed={seed}", f"train.seed={seed}"]  # fmt: skip
        t0 = time.perf_counter()
        trained = run_job(
            load_config(config, [*common, f"extract.root={tmp / 'train'}",
                                 f"write.run_dir={tmp / 'trained'}"]), progress=False,
        )  # fmt: skip
        train_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        tr = transform_run(
            trained.run_dir, [f"extract.root={tmp / 'now'}", f"write.run_dir={tmp / 'transform'}"],
            only_new=True, progress=False,
        )  # fmt: skip
        transform_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        re = run_job(
            load_config(config, [*common, f"extract.root={tmp / 'now'}",
                                 f"write.run_dir={tmp / 'retrain'}"]), progress=False,
        )  # fmt: skip
        retrain_s = time.perf_counter() - t0

        e = cfg.extract.edges[cfg.build.target]
        now_ratings = pcsv.read_csv(tmp / "now" / e.file)
        items_now = np.unique(now_ratings.column(e.dst_id).to_numpy())
        item_ids = pq.read_table(tr.run_dir / "id_map" / f"{e.dst}.parquet").column("id")
        items_all = np.asarray(item_ids.to_pylist())
        new_users = np.sort(split["new_users"])
        results = {}
        for name, recs in (
            ("transform", pq.read_table(tr.run_dir / "recommendations.parquet")),
            ("retrain", pq.read_table(re.run_dir / "recommendations.parquet")),
            ("popularity", popularity_recs(tmp / "now", cfg, new_users)),
        ):
            results[name] = score_recs(recs, split["user_test"], cfg, new_users, items_all)
        ndcg = {n: r[f"ndcg@{K}"] for n, r in results.items()}
        cold = item_cold_start(trained.run_dir, split, cfg, tmp / "now")
        return {
            "benchmark": "inductive",
            "config": config,
            "overrides": overrides,
            "seed": seed,
            "model": cfg.model.name,
            "blend": trained.metrics["stages"]["train"].get("blend", {}).get("partner"),
            "held_out": {
                "users": len(new_users),
                "items": len(split["new_items"]),
                "user_test_edges": split["user_test"].num_rows,
                "items_with_edges_now": int(len(items_now)),
            },  # fmt: skip
            "edges": split["edges"],
            "new_users": results,
            "ratios": {
                "transform_to_popularity": ndcg["transform"] / ndcg["popularity"],
                "transform_to_retrain": ndcg["transform"] / ndcg["retrain"],
                "retrain_to_transform_seconds": retrain_s / transform_s,
            },
            "seconds": {"train": train_s, "transform": transform_s, "retrain": retrain_s},
            "transform_stages": {k: round(v, 2) for k, v in tr.metrics["seconds"].items()},
            "new_items": cold,
            "machine": machine(),
            "versions": versions(),
        }


def summary(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each NDCG@K, ratio and time."""

    def stat(values):
        return {
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        }

    out = {f"new_users_ndcg@{K}": {}, "ratios": {}, "seconds": {}}
    for name in runs[0]["new_users"]:
        out[f"new_users_ndcg@{K}"][name] = stat([r["new_users"][name][f"ndcg@{K}"] for r in runs])
    for key in runs[0]["ratios"]:
        out["ratios"][key] = stat([r["ratios"][key] for r in runs])
    for key in runs[0]["seconds"]:
        out["seconds"][key] = stat([r["seconds"][key] for r in runs])
    if "ratio_to_random" in runs[0]["new_items"]:
        out["new_items"] = {
            key: stat([r["new_items"][key] for r in runs])
            for key in (f"transform_ndcg@{K}", f"random_ndcg@{K}", "ratio_to_random")
        }
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/movielens-link.yaml")
    p.add_argument("--users", type=float, default=0.1, help="share of users held out")
    p.add_argument("--items", type=float, default=0.1, help="share of items held out")
    p.add_argument("--seeds", default="0,1,2", help="one held-out draw and training per seed")
    p.add_argument("--out", default="bench/results")
    p.add_argument("overrides", nargs="*", metavar="key.path=value")
    a = p.parse_args(argv)
    runs = []
    for seed in (int(s) for s in a.seeds.split(",")):
        runs.append(json.loads(json.dumps(
            measure(a.config, a.users, a.items, seed, a.overrides), default=_plain
        )))  # fmt: skip
    result = {
        "benchmark": "inductive",
        "config": a.config,
        "overrides": a.overrides,
        "summary": summary(runs),
        "runs": runs,
        "machine": runs[0].pop("machine"),
        "versions": runs[0].pop("versions"),
    }
    for r in runs:
        r.pop("machine", None), r.pop("versions", None)
    save(result, f"inductive-{Path(a.config).stem}", a.out)
    s = result["summary"]
    n = s[f"new_users_ndcg@{K}"]
    print(
        f"new users NDCG@{K} over {len(runs)} seed(s): transform {n['transform']['mean']:.4f}, "
        f"retrain {n['retrain']['mean']:.4f}, popularity {n['popularity']['mean']:.4f}; "
        f"x{s['ratios']['transform_to_popularity']['mean']:.2f} popularity, "
        f"x{s['ratios']['transform_to_retrain']['mean']:.2f} retrain, "
        f"{s['ratios']['retrain_to_transform_seconds']['mean']:.1f}x faster"
    )


def _plain(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


if __name__ == "__main__":
    main()
