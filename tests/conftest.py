"""Tiny deterministic graphs written to a temp folder, and configs that read them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graphrec.config import JobConfig, from_dict

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def write_tiny_graph(root: Path, users: int = 12, movies: int = 20, per_user: int = 8) -> None:
    """``users`` users each rate ``per_user`` movies (a fixed pattern), CSV like MovieLens."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "movies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["movieId", "title", "genres"])
        for m in range(1, movies + 1):
            genres = "|".join(GENRES[j] for j in range(len(GENRES)) if (m >> j) & 1) or "(none)"
            w.writerow([100 + m, f"Movie number {m}, part {m % 3}", genres])
    with open(root / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        for u in range(1, users + 1):
            for j in range(per_user):
                m = (u * 3 + j * 2) % movies + 1
                rating = 1.0 + ((u + m) % 9) / 2
                w.writerow([u, 100 + m, rating, 1_000_000 + u * 100 + j])


def tiny_config_dict(root: Path, tmp: Path, text: bool = False) -> dict:
    features = [{"property": "genres", "kind": "multi_hot"}]
    if text:
        features.insert(0, {"property": "title", "kind": "text"})
    return {
        "name": "tiny",
        "extract": {
            "root": str(root),
            "snapshot_dir": str(tmp / "snapshots"),
            "nodes": {
                "user": {"id": "userId"},
                "movie": {
                    "id": "movieId",
                    "file": "movies.csv",
                    "properties": {"title": "string", "genres": "string"},
                },
            },
            "edges": {
                "rates": {
                    "src": "user",
                    "dst": "movie",
                    "src_id": "userId",
                    "dst_id": "movieId",
                    "file": "ratings.csv",
                    "properties": {"rating": "float", "timestamp": "int"},
                },
            },
        },
        "build": {
            "target": "rates",
            "label": "rating",
            "timestamp": "timestamp",
            "features": {"movie": features},
            "cache_dir": str(tmp / "cache"),
        },
        "sampler": {"num_neighbors": [3, 2], "batch_size": 16},
        "model": {"hidden": 8, "embedding_dim": 8},
        "train": {"epochs": 2, "lr": 0.01, "checkpoint_path": str(tmp / "checkpoints")},
        "recommend": {"k": 3},
        "write": {"run_dir": str(tmp / "run")},
    }


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_tiny_graph(root)
    return root


@pytest.fixture
def tiny_cfg(tiny_root: Path, tmp_path: Path) -> JobConfig:
    return from_dict(JobConfig, tiny_config_dict(tiny_root, tmp_path), "")


def make_config(data: dict) -> JobConfig:
    return from_dict(JobConfig, data, "")
