"""Fitted feature encoders: one per node property, chosen by hand or by ``kind: auto``.

Each encoder is fitted once on a column (:func:`fit`) into a plain, JSON-ready *state*
(vocabularies, means and scales, bucket edges, the text model's name), and
:func:`transform` turns any column of the same property into a float32 ``[rows, dim]``
tensor with that state alone. The run folder keeps the states (``encoders.json``), so a
graph read later (nodes added after training) is encoded exactly as the trained one was.

Kinds:
- ``numeric``: ``scaler`` standard (z-score), minmax, or rankgauss (the empirical CDF,
  through the inverse normal); a missing value takes the fitted mean, and a missing
  indicator column is added when the fitted column had missing values.
- ``bucket``: quantile buckets (``buckets``), one-hot, plus a missing bucket.
- ``category``: one-hot of the ``max_categories`` most frequent values plus OTHER (any
  other value, also one never seen in fitting); a missing value is all zeros.
- ``multi_hot``: separator-joined categories; the ``max_categories`` most frequent, plus
  OTHER where fitting had more.
- ``text``: a sentence embedding (:mod:`graphrec.graph.features`).
- ``datetime``: the year (standardised) and the month and weekday on circles (sin, cos),
  plus a missing indicator.
- ``bool``: 1/0, plus a missing indicator.

``auto`` decides from the Arrow type and the values (:func:`choose`): booleans are
``bool``, numbers ``numeric``, dates and timestamps ``datetime``; text that a separator
splits into short tokens is ``multi_hot``; otherwise text whose values mostly have more
than ``auto_text_words`` words is ``text`` (Neptune ML's rule), the rest ``category``. A
column with no value at all is left out, with a warning.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from graphrec.config import FeatureSpec
from graphrec.errors import ConfigError

SEPARATORS = ("|", ";", ",")
"""Separators ``auto`` tries for multi-valued text, in this order."""
QUANTILES = 1001
"""Points of the empirical CDF kept for rank-gauss."""


# -- choosing --------------------------------------------------------------------------------
def choose(column: pa.ChunkedArray | pa.Array, spec: FeatureSpec) -> tuple[str | None, str]:
    """The kind ``auto`` picks for ``column``, and why (None: leave the property out)."""
    arr = _array(column)
    t = arr.type
    n_valid = len(arr) - arr.null_count
    if n_valid == 0:
        return None, "no value in any row"
    if pa.types.is_boolean(t):
        return "bool", "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "numeric", f"{t} numbers"
    if pa.types.is_temporal(t):
        return "datetime", str(t)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return None, f"no encoder for Arrow type {t}"
    sample = _sample_text(arr)
    numbers = sum(_is_number(v) for v in sample)
    if sample and numbers == len(sample):
        return "numeric", "numbers written as text"
    if sample and numbers >= 0.5 * len(sample):
        return "numeric", (
            f"mixed: {len(sample) - numbers} of {len(sample)} sampled values are not numbers "
            f"(e.g. {next(v for v in sample if not _is_number(v))!r}); they count as missing"
        )
    sep = spec.separator or _detect_separator(sample, spec)
    if sep is not None:
        return "multi_hot", f"values joined by {sep!r}"
    words = np.median([len(v.split()) for v in sample]) if sample else 0
    if words > spec.auto_text_words:
        return "text", f"median {words:g} words > {spec.auto_text_words}"
    return "category", f"median {words:g} words <= {spec.auto_text_words}"


def _sample_text(arr: pa.Array, n: int = 2000) -> list[str]:
    values = pc.drop_null(arr).cast(pa.string())
    if len(values) > n:  # evenly spaced rows: deterministic, no RNG
        values = values.take(pa.array(np.linspace(0, len(values) - 1, n).astype(np.int64)))
    return [v for v in values.to_pylist() if v.strip()]


def _detect_separator(sample: list[str], spec: FeatureSpec) -> str | None:
    """A separator present in at least a fifth of the values, whose pieces are short
    (at most ``auto_text_words`` words on average) and repeat across rows (no more
    distinct pieces than distinct values: ``Smith, John`` is not two categories)."""
    if not sample:
        return None
    for sep in SEPARATORS:
        with_sep = [v for v in sample if sep in v]
        if len(with_sep) < 0.2 * len(sample):
            continue
        tokens = [t.strip() for v in sample for t in v.split(sep) if t.strip()]
        if not tokens:
            continue
        mean_words = sum(len(t.split()) for t in tokens) / len(tokens)
        if mean_words <= spec.auto_text_words and len(set(tokens)) <= len(set(sample)):
            return sep
    return None


# -- fitting and applying ----------------------------------------------------------------------
def fit(column: pa.ChunkedArray | pa.Array, spec: FeatureSpec, where: str) -> dict | None:
    """The state of ``spec`` fitted on ``column`` (None: ``auto`` leaves it out)."""
    arr = _array(column)
    kind, why = spec.kind, "given"
    if kind == "auto":
        kind, why = choose(arr, spec)
        if kind is None:
            return None
    state: dict = {"property": spec.property, "kind": kind, "why": why}
    text = spec.kind == "auto" and _is_text(arr) and kind == "numeric"
    if text:
        state["parse"] = True  # numbers written as text
        if why.startswith("mixed"):
            state["warning"] = f"numbers and text in one property, encoded as numeric ({why})"
    if kind == "numeric":
        values, ok = _floats(arr, where, text)
        if not ok.any():
            raise ConfigError(f"{where}: no numeric values to use as a feature")
        v = values[ok]
        state.update(scaler=spec.scaler, mean=float(v.mean()), missing=bool((~ok).any()))
        if spec.scaler == "standard":
            state["std"] = float(v.std()) or 1.0
        elif spec.scaler == "minmax":
            state.update(min=float(v.min()), max=float(v.max()))
        else:  # rankgauss
            state["quantiles"] = np.quantile(v, np.linspace(0, 1, QUANTILES)).tolist()
    elif kind == "bucket":
        values, ok = _floats(arr, where, text)
        if not ok.any():
            raise ConfigError(f"{where}: no numeric values to bucket")
        inner = np.quantile(values[ok], np.linspace(0, 1, spec.buckets + 1)[1:-1])
        state["edges"] = np.unique(inner).tolist()
    elif kind in ("category", "multi_hot"):
        if kind == "multi_hot":
            sep = spec.separator  # given; auto detects it; an explicit kind defaults to |
            if sep is None and spec.kind == "auto":
                sep = _detect_separator(_sample_text(arr), spec)
            sep = sep or "|"
            state["separator"] = sep
            tokens = _tokens(arr, sep)
            counts = Counter(t for row in tokens for t in row)
        else:
            counts = Counter(v for v in _strings(arr) if v is not None)
        if not counts:
            raise ConfigError(f"{where}: no values to use as categories")
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        state["vocab"] = sorted(ranked[: spec.max_categories])  # the most frequent, A-Z
        state["other"] = kind == "category" or len(ranked) > spec.max_categories
        state["distinct"] = len(ranked)
        if len(ranked) > spec.max_categories:
            state["warning"] = (
                f"{len(ranked)} distinct values; the {spec.max_categories} most frequent are "
                "one-hot columns, the rest share OTHER (raise max_categories, or kind: text)"
            )
    elif kind == "text":
        state["model"] = spec.model
    elif kind == "datetime":
        years, _, _, ok = _datetime_parts(arr)
        if not ok.any():
            raise ConfigError(f"{where}: no dates to use as a feature")
        state.update(
            year_mean=float(years[ok].mean()),
            year_std=float(years[ok].std()) or 1.0,
            missing=bool((~ok).any()),
        )
    elif kind == "bool":
        state["missing"] = arr.null_count > 0
    else:  # pragma: no cover (FeatureSpec checks the kind)
        raise ConfigError(f"{where}: unknown feature kind {kind!r}")
    return state


def transform(
    column: pa.ChunkedArray | pa.Array,
    state: dict,
    where: str,
    text=None,
) -> torch.Tensor:
    """Encode ``column`` with a fitted ``state``; ``text(column, model)`` embeds text."""
    arr = _array(column)
    kind = state["kind"]
    if kind == "numeric":
        values, ok = _floats(arr, where, state.get("parse", False))
        filled = np.where(ok, values, state["mean"])
        if state["scaler"] == "standard":
            out = (filled - state["mean"]) / state["std"]
        elif state["scaler"] == "minmax":
            span = (state["max"] - state["min"]) or 1.0
            out = (filled - state["min"]) / span
        else:
            q = np.asarray(state["quantiles"])
            p = np.interp(filled, q, np.linspace(0, 1, len(q)))
            p = np.clip(p, 1e-3, 1 - 1e-3)
            out = math.sqrt(2) * torch.erfinv(torch.from_numpy(2 * p - 1)).numpy()
            out = np.where(ok, out, 0.0)
        cols = [out]
        if state["missing"]:
            cols.append((~ok).astype(np.float64))
        return torch.from_numpy(np.stack(cols, axis=1)).float()
    if kind == "bucket":
        values, ok = _floats(arr, where, state.get("parse", False))
        edges = np.asarray(state["edges"])
        idx = np.searchsorted(edges, np.where(ok, values, 0.0), side="right")
        idx = np.where(ok, idx, len(edges) + 1)  # the missing bucket
        return _one_hot(idx, len(edges) + 2)
    if kind in ("category", "multi_hot"):
        vocab = pa.array(state["vocab"], pa.string())
        text = arr.cast(pa.string())
        if kind == "category":
            values, rows = text, np.arange(len(text))
        else:
            lists = pc.split_pattern(pc.fill_null(text, ""), pattern=state["separator"])
            values = pc.utf8_trim_whitespace(pc.list_flatten(lists))
            rows = pc.list_parent_indices(lists).to_numpy()
        present = np.asarray(
            pc.and_(pc.is_valid(values), pc.not_equal(values, "")).to_numpy(zero_copy_only=False),
            dtype=bool,
        )  # fmt: skip
        cols = pc.fill_null(pc.index_in(values, value_set=vocab), -1).to_numpy()
        width = len(vocab) + (1 if state["other"] else 0)
        cols = np.where(cols < 0, len(vocab), cols)  # OTHER
        keep = present & (cols < width)  # an unknown value without OTHER is dropped
        out = torch.zeros(len(arr), width)
        out[torch.from_numpy(rows[keep].astype(np.int64)),
            torch.from_numpy(cols[keep].astype(np.int64))] = 1.0  # fmt: skip
        return out
    if kind == "text":
        if text is None:  # pragma: no cover (the builder always passes one)
            raise ConfigError(f"{where}: text features need the sentence encoder")
        return text(arr, state["model"])
    if kind == "datetime":
        years, months, weekdays, ok = _datetime_parts(arr)
        year = np.where(ok, (years - state["year_mean"]) / state["year_std"], 0.0)
        cols = [year]
        for value, period in ((months, 12.0), (weekdays, 7.0)):
            angle = 2 * math.pi * value / period
            cols += [np.where(ok, np.sin(angle), 0.0), np.where(ok, np.cos(angle), 0.0)]
        if state["missing"]:
            cols.append((~ok).astype(np.float64))
        return torch.from_numpy(np.stack(cols, axis=1)).float()
    if kind == "bool":
        valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
        values = np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=float)
        cols = [values]
        if state["missing"]:
            cols.append((~valid).astype(np.float64))
        return torch.from_numpy(np.stack(cols, axis=1)).float()
    raise ConfigError(f"{where}: unknown feature kind {kind!r}")  # pragma: no cover


def describe(state: dict) -> str:
    """One line for ``inspect`` and logs: the kind, its width and why."""
    kind = state["kind"]
    extra = ""
    if kind in ("category", "multi_hot"):
        extra = f", {len(state['vocab'])} of {state['distinct']} values"
        if kind == "multi_hot":
            extra += f", separator {state['separator']!r}"
    elif kind == "numeric":
        extra = f", {state['scaler']}"
    return f"{kind} ({state['why']}{extra})"


# -- helpers ---------------------------------------------------------------------------------
def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _floats(arr: pa.Array, where: str, text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as float64 and where they are present; with ``text`` (``auto`` found a text
    column of numbers) a value that is not a number counts as missing."""
    if text and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        values = np.array(
            [float(v) if v is not None and _is_number(v) else np.nan for v in arr.to_pylist()],
            dtype=np.float64,
        )
        return values, np.isfinite(values)
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
            or pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):  # fmt: skip
        raise ConfigError(f"{where}: a numeric feature needs numbers, not {arr.type}")
    values = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, np.isfinite(values)


def _is_text(arr: pa.Array) -> bool:
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def _strings(arr: pa.Array) -> list[str | None]:
    return [None if v is None else v.strip() or None for v in arr.cast(pa.string()).to_pylist()]


def _tokens(arr: pa.Array, sep: str) -> list[list[str]]:
    return [
        [] if v is None else [t.strip() for t in v.split(sep) if t.strip()] for v in _strings(arr)
    ]


def _datetime_parts(arr: pa.Array) -> tuple[np.ndarray, ...]:
    ok = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)

    def part(fn) -> np.ndarray:
        return np.asarray(pc.fill_null(fn(arr), 0).to_numpy(zero_copy_only=False), dtype=float)

    return part(pc.year), part(pc.month) - 1, part(pc.day_of_week), ok


def _one_hot(idx: np.ndarray, width: int) -> torch.Tensor:
    out = torch.zeros(len(idx), width)
    out[torch.arange(len(idx)), torch.from_numpy(idx.astype(np.int64))] = 1.0
    return out
