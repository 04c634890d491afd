"""What reaches an output file: finite numbers only, and whole files only.

:func:`finite_or_null` turns every non-finite float of a result into an explicit null
(and says which), so ``metrics.json`` and the quality reports never show NaN as a number;
:func:`write_text_atomic` writes a file under a temporary name and renames it, so a reader
(or the previous result) never meets half a file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def finite_or_null(value, key: str = "") -> tuple:
    """``value`` with every non-finite float replaced by None, and the keys replaced: a
    metric that could not be computed is an explicit null, never a NaN shown as a number."""
    if isinstance(value, dict):
        out, nulls = {}, []
        for k, v in value.items():
            out[k], sub = finite_or_null(v, f"{key}.{k}" if key else str(k))
            nulls += sub
        return out, nulls
    if isinstance(value, (list, tuple)):
        items = [finite_or_null(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], [n for _, sub in items for n in sub]
    if isinstance(value, float) and not math.isfinite(value):
        return None, [key]
    return value, []


def write_text_atomic(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` whole, or keeps what it held before."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
