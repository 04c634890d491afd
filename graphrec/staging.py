"""Folders that appear whole or not at all (run folders, snapshots), and never over
anything graphrec did not create.

A staged folder is written under a name unique to its process
(``.<name>.partial-<host>-<pid>-<token>``, holding a marker file that says who made it)
and renamed to its final name only when complete. The final name is reserved with
``mkdir``, which fails when the name exists, and the staging folder is then renamed over
that empty folder of its own: two runs that finish at the same instant can never replace
each other, and an existing folder is never deleted or overwritten.

Staging folders of killed processes stay behind (a SIGKILL runs no cleanup):
:func:`leftover_staging` finds them by their marker, the next run names them, and
``graphrec clean`` removes them on request.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from graphrec.errors import RunError

MARKER = ".graphrec-staging"
"""File inside every staging folder: who made it (host, pid, start time, final name)."""


@contextlib.contextmanager
def staged_dir(final: str | Path, exists: Literal["error", "keep"] = "error") -> Iterator[Path]:
    """Yield a fresh staging folder beside ``final``; on success it becomes ``final``, on
    any error or interrupt it is removed.

    ``exists``: what happens when ``final`` already exists at the end: ``error`` (run
    folders) raises :class:`RunError` and leaves it untouched; ``keep`` (content-addressed
    snapshots, where an identical folder may have been written meanwhile by another run)
    keeps the existing one and discards this one.
    """
    final = Path(final)
    made = _make_parents(final.parent)
    host = socket.gethostname()
    work = final.with_name(f".{final.name}.partial-{host}-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        work.mkdir()
    except BaseException:
        _remove_empty(made)
        raise
    try:
        (work / MARKER).write_text(
            json.dumps(
                {"host": host, "pid": os.getpid(), "started": time.time(), "final": final.name}
            )
        )
        yield work
        try:
            final.mkdir()  # atomic reservation: fails when anything has the name
        except FileExistsError:
            if exists == "keep":
                shutil.rmtree(work, ignore_errors=True)
                return
            raise RunError(
                f"{final} appeared while this run was writing; it was left untouched and "
                "this run's output discarded"
            ) from None
        os.replace(work, final)  # over the empty folder reserved just above
        (final / MARKER).unlink()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _remove_empty(made)
        raise


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs
        except BaseException:
            _remove_empty(made)
            raise
        made.insert(0, path)
    return made


def _remove_empty(made: list[Path]) -> None:
    """Remove the folders a failed run created, deepest first, if they are still empty."""
    for path in made:
        try:
            path.rmdir()
        except FileNotFoundError:
            continue  # already gone: its parents may still be empty
        except OSError:
            return  # not empty (someone else's content now): leave it and its parents


def leftover_staging(parent: str | Path) -> list[tuple[Path, dict]]:
    """Staging folders under ``parent`` whose process is gone (on this host) or unknown
    (another host), with what their marker says; oldest first."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    found = []
    host = socket.gethostname()
    for path in parent.glob(".*.partial-*"):
        if path.is_symlink() or not path.is_dir():
            continue  # graphrec makes real folders only
        try:
            info = json.loads((path / MARKER).read_text())
        except (OSError, ValueError):
            continue  # not made by graphrec (or unreadable): never touched
        if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
            continue  # a marker graphrec did not write
        if info.get("host") == host and alive(info["pid"]):
            continue  # a run still writing it
        found.append((path, info))
    started = lambda f: f[1]["started"] if isinstance(f[1].get("started"), (int, float)) else 0
    return sorted(found, key=started)


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_manifest(folder: Path, extra: dict | None = None) -> dict:
    """``manifest.json``: every file of ``folder`` (relative path, bytes), so a reader can
    tell a complete run folder and a tool can remove exactly what the run made."""
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ("manifest.json", MARKER)
    }
    manifest = {"files": files, **(extra or {})}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
