"""``graphrec inspect --config`` on the file source: the encoder ``kind: auto`` would
choose for each declared node property, read from the node tables."""

from __future__ import annotations

import json

import yaml

from graphrec.cli import main
from tests.conftest import tiny_config_dict


def test_inspect_prints_what_auto_would_choose_for_each_property(tiny_root, tmp_path, capsys):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["extract"]["nodes"]["movie"]["properties"]["year"] = "int"
    with open(tiny_root / "movies.csv") as f:
        rows = f.read().splitlines()
    lines = [rows[0] + ",year"] + [f"{r},{1990 + i}" for i, r in enumerate(rows[1:])]
    (tiny_root / "movies.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["inspect", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "movie.title: text (median 5 words > 3)" in out
    assert "movie.genres: multi_hot (values joined by '|')" in out
    assert "movie.year: numeric (int64 numbers)" in out
    assert main(["inspect", "--config", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["movie"]["genres"]["kind"] == "multi_hot" and "user" not in got


def test_inspect_says_so_when_no_node_has_a_property(tiny_root, tmp_path, capsys):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["extract"]["nodes"]["movie"]["properties"] = {}
    data["build"]["features"] = {}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["inspect", "--config", str(path)]) == 0
    assert "nothing: no node type declares a property" in capsys.readouterr().out
