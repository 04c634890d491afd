"""``graphrec synth``: a seeded synthetic user-item graph with power-law degrees.

Writes a folder the file source reads (``configs/synth.yaml``):

* ``users.parquet``   ``userId``
* ``items.parquet``   ``itemId, title, categories`` (title-like text, ``|``-separated categories)
* ``ratings.parquet`` ``userId, itemId, rating, timestamp`` in row groups (partitions)

User activity follows a Pareto law and item popularity a Zipf law, like real interaction
data; ratings come from a user bias, an item quality and a taste match between the user's
favourite categories and the item's, plus noise, in half-star steps. Users are generated in
chunks of about ``chunk_edges`` edges, each written as one row group, so memory stays
bounded by the chunk whatever the size. (user, item) pairs are unique: each chunk owns its
users and drops repeated draws.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from graphrec.errors import ConfigError
from graphrec.staging import staged_dir

CATEGORIES = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "Sport",
    "History",
    "Music",
]
ADJECTIVES = [
    "Silent",
    "Golden",
    "Broken",
    "Hidden",
    "Last",
    "Red",
    "Endless",
    "Wild",
    "Cold",
    "Secret",
    "Lost",
    "Bright",
    "Dark",
    "Little",
    "Iron",
    "Crimson",
]
NOUNS = [
    "River",
    "Empire",
    "Garden",
    "Night",
    "Road",
    "Kingdom",
    "Storm",
    "Harbor",
    "Promise",
    "Machine",
    "Summer",
    "Shadow",
    "Mountain",
    "Letter",
    "City",
    "Voyage",
]


def synth_graph(
    out: str | Path,
    edges: int,
    users: int | None = None,
    items: int | None = None,
    seed: int = 0,
    chunk_edges: int = 2_000_000,
    progress: bool = True,
) -> dict:
    """Generate about ``edges`` ratings into the new folder ``out``; returns counts and
    seconds (also in ``synth.json``). The folder appears whole or not at all (an interrupted
    run leaves no truncated graph behind), and an existing ``out`` is refused."""
    out = Path(out)
    n_users = users or max(100, edges // 50)
    n_items = items or max(200, edges // 200)
    for flag, value, low in (
        ("--edges", edges, 1000), ("--users", n_users, 1), ("--items", n_items, 2),
        ("--seed", seed, 0),
    ):  # fmt: skip
        if value < low:
            raise ConfigError(f"synth: {flag} {value} must be >= {low}")
    if n_users * (n_items // 2) < edges:
        raise ConfigError(
            f"synth: {edges:,} edges do not fit {n_users:,} users x {n_items:,} items (each "
            f"user rates at most half the items: {n_users * (n_items // 2):,} pairs)"
        )
    if out.exists() or out.is_symlink():
        raise ConfigError(f"synth: {out} already exists: name a new folder (--out)")
    with staged_dir(out) as work:
        return _synth(work, edges, n_users, n_items, seed, chunk_edges, progress)


def _synth(
    out: Path, edges: int, n_users: int, n_items: int, seed: int, chunk_edges: int, progress: bool
) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)

    # activity: Pareto weights scaled to the edge budget, at least 1, at most half the items
    activity = rng.pareto(1.5, n_users) + 1.0
    # degrees proportional to activity, capped at half the items; rescale so that the caps
    # and the rounding still add up to the requested number of edges
    cap, scale = max(1, n_items // 2), edges / activity.sum()
    for _ in range(20):
        degree = np.clip(np.round(activity * scale), 1, cap).astype(np.int64)
        if abs(int(degree.sum()) - edges) <= edges // 10_000:
            break
        scale *= edges / max(int(degree.sum()), 1)
    # popularity: Zipf over a random order of the items
    rank = rng.permutation(n_items)
    pop = 1.0 / (rank + 2.0) ** 1.0
    cdf = np.cumsum(pop / pop.sum())
    quality = rng.normal(0, 0.5, n_items)
    item_cats = rng.integers(0, len(CATEGORIES), (n_items, 3))
    n_cats = rng.integers(1, 4, n_items)
    user_fav = rng.integers(0, len(CATEGORIES), n_users)
    user_bias = rng.normal(0, 0.4, n_users)

    _write_items(out / "items.parquet", n_items, item_cats, n_cats, rng)
    pq.write_table(pa.table({"userId": np.arange(1, n_users + 1)}), out / "users.parquet")

    writer = None
    written = 0
    bar = tqdm(
        total=int(degree.sum()), desc="synth", unit=" edges", unit_scale=True, disable=not progress
    )
    try:
        start = 0
        while start < n_users:
            budget = np.cumsum(degree[start:])
            stop = start + int(np.searchsorted(budget, chunk_edges)) + 1
            stop = min(stop, n_users)
            key = _draw_unique(rng, np.arange(start, stop), degree[start:stop], cdf, n_items)
            u, i = key // n_items, key % n_items
            match = (item_cats[i] == user_fav[u][:, None]).any(1) & (
                np.arange(3)[None, :] < n_cats[i][:, None]
            ).any(1)
            score = 3.5 + user_bias[u] + quality[i] + 0.6 * match + rng.normal(0, 0.7, len(u))
            rating = np.clip(np.round(score * 2) / 2, 0.5, 5.0)
            ts = 1_500_000_000 + rng.integers(0, 200_000_000, len(u))
            table = pa.table(
                {
                    "userId": u + 1,
                    "itemId": i + 1,
                    "rating": rating,
                    "timestamp": ts,
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(out / "ratings.parquet", table.schema)
            writer.write_table(table, row_group_size=1 << 19)  # row groups = read partitions
            written += len(u)
            bar.update(int(degree[start:stop].sum()))
            start = stop
    finally:
        if writer is not None:
            writer.close()
        bar.close()
    stats = {
        "edges": written,
        "users": n_users,
        "items": n_items,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    stats["edges_per_s"] = written / stats["seconds"]
    (out / "synth.json").write_text(json.dumps(stats, indent=1))
    return stats


def _draw_unique(rng, users: np.ndarray, degree: np.ndarray, cdf: np.ndarray, n_items: int):
    """Sorted unique ``user * n_items + item`` keys, about ``degree.sum()`` of them.

    Popular items are drawn twice for the same user; redraw the shortfall (users in
    proportion to their degree) a few times, then trim at random to the target.
    """
    target = int(degree.sum())
    u = np.repeat(users, degree)
    keys = np.unique(
        u * n_items + np.minimum(np.searchsorted(cdf, rng.random(len(u))), n_items - 1)
    )
    p = degree / degree.sum()
    for _ in range(8):
        need = target - len(keys)
        if need <= 0:
            break
        u = rng.choice(users, size=int(need * 1.3) + 1, p=p)
        i = np.minimum(np.searchsorted(cdf, rng.random(len(u))), n_items - 1)
        keys = np.union1d(keys, u * n_items + i)
    if len(keys) > target:
        keys = np.sort(rng.choice(keys, target, replace=False))
    return keys


def _write_items(path: Path, n: int, cats: np.ndarray, n_cats: np.ndarray, rng) -> None:
    adj = rng.integers(0, len(ADJECTIVES), n)
    noun = rng.integers(0, len(NOUNS), n)
    year = rng.integers(1950, 2024, n)
    titles = [
        f"The {ADJECTIVES[a]} {NOUNS[b]} ({y})" for a, b, y in zip(adj, noun, year, strict=True)
    ]
    categories = [
        "|".join(dict.fromkeys(CATEGORIES[c] for c in cats[k, : n_cats[k]])) for k in range(n)
    ]
    pq.write_table(
        pa.table({"itemId": np.arange(1, n + 1), "title": titles, "categories": categories}), path
    )
