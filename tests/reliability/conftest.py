"""The fault catalogue: bad inputs and faults, each answered in one line.

Every case asserts the one-line message (what and where), the exit status, and that
nothing was written or lost. Helpers here run the real CLI in this process (bad inputs,
which fail before any heavy work) or as a real child process (signals).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from graphrec.cli import main
from tests.conftest import tiny_config_dict, write_tiny_graph


def tree(root: Path) -> dict[str, str]:
    """Everything under ``root`` (relative path -> sha256 of a file, 'dir', or the target of
    a link): to show that nothing was lost or changed."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_cli(capsys, *args: str) -> tuple[int, str, list[str]]:
    """The real CLI in this process: exit status, stdout, stderr lines."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def assert_one_line(err: list[str], *parts: str) -> str:
    """stderr is one ``graphrec: error: ...`` line holding every part."""
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("graphrec: error: "), line
    assert "Traceback" not in line
    for part in parts:
        assert part in line, (part, line)
    return line


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch):
    """A tiny graph and a YAML config reading it; returns (config path, config dict). The
    test runs in ``tmp_path``, so default run folders (``runs/``) land there."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    write_tiny_graph(root)
    data = tiny_config_dict(root, tmp_path)
    data["train"]["patience"] = 0
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, data


_CHILDREN: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _reap_children():
    """A failed test leaves no child process running (and eating the CPU of the rest)."""
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def child(args: list[str], cwd: Path, **kw) -> subprocess.Popen:
    """``graphrec ARGS`` as a real child process (its own Python, real signals)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrec", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
    _CHILDREN.append(proc)
    return proc
