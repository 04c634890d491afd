"""What every benchmark records next to its numbers, and where it saves them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from graphrec.environment import machine, versions  # noqa: F401  (the one probe)


def save(result: dict, name: str, out: str | Path) -> Path:
    """Print ``result`` and write it to ``out/<name>-<timestamp>.json``."""
    print(json.dumps(result, indent=1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"saved {path}")
    return path
