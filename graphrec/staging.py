"""Folders that appear whole or not at all (run folders, snapshots)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_dir(final: str | Path) -> Iterator[Path]:
    """Yield a sibling work folder; on success it replaces ``final``, on error it is removed.

    Readers never see a half-written ``final``: the swap is a rename on the same filesystem.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = final.with_name(f".{final.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        yield work
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
