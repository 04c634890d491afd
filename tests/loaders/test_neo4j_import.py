"""``graphrec load --import-files``: the files of Neo4j's offline bulk importer (the import
itself, into a real server, is tested in tests/neo4j/test_bulk_import.py)."""

import csv
import dataclasses

import pyarrow as pa
import pytest

from graphrec.cli import main
from graphrec.errors import ConfigError, DataError
from graphrec.loaders import extract
from graphrec.loaders.extract import GraphTables
from graphrec.loaders.files import FileSource
from graphrec.loaders.neo4j_import import import_command, write_import_files


def tables_of(cfg):
    return extract(FileSource(dataclasses.replace(cfg.extract, source="files")), progress=False)


def test_files_carry_ids_types_and_properties(tiny_cfg, tmp_path):
    tables = tables_of(tiny_cfg)
    out = write_import_files(tables, tiny_cfg.extract, tmp_path / "imp")
    heads = {p.name: p.read_text().strip() for p in out.root.glob("*.header.csv")}
    key = tiny_cfg.extract.nodes["movie"].id
    assert heads["nodes-movie.header.csv"] == f":ID(movie),{key}:long,title:string,genres:string"
    assert heads["rels-rates.header.csv"] == (
        ":START_ID(user),:END_ID(movie),rating:double,timestamp:long"
    )
    rows = list(csv.reader(open(out.root / "nodes-movie.csv")))
    movies = tables.nodes["movie"]
    assert len(rows) == movies.num_rows == out.rows["nodes-movie"]
    # a title with a comma survives as one field
    assert [r[2] for r in rows] == movies["title"].to_pylist()
    assert all(r[0] == r[1] for r in rows)  # the id space's id and the key property
    rels = list(csv.reader(open(out.root / "rels-rates.csv")))
    want = tables.edges["rates"]
    assert [(int(a), int(b), float(c), int(d)) for a, b, c, d in rels] == list(
        zip(*(want[c].to_pylist() for c in ("src", "dst", "rating", "timestamp")), strict=True)
    )
    args = import_command(out, "films")
    assert args[:4] == ["database", "import", "full", "films"]  # before the file options
    rtype = tiny_cfg.extract.edges["rates"].type or "rates"
    files = f"{out.root / 'rels-rates.header.csv'},{out.root / 'rels-rates.csv'}"
    assert f"--relationships={rtype}={files}" in args
    assert not any(a.startswith("--multiline") for a in args)
    assert f"--report-file={out.root / 'import.report'}" in args  # not the caller's folder


def test_an_existing_folder_with_anything_in_it_is_refused(tiny_cfg, tmp_path):
    tables = tables_of(tiny_cfg)
    (tmp_path / "imp").mkdir()
    keep = tmp_path / "imp" / "mine.txt"
    keep.write_text("not graphrec's")
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        write_import_files(tables, tiny_cfg.extract, tmp_path / "imp")
    assert keep.read_text() == "not graphrec's"


def test_bad_values_names_and_types_are_refused_before_any_file(tiny_cfg, tmp_path):
    tables = tables_of(tiny_cfg)
    rates = tables.edges["rates"]
    nan = rates.set_column(
        rates.column_names.index("rating"),
        "rating",
        pa.array([float("nan")] + rates["rating"].to_pylist()[1:]),
    )
    bad = GraphTables(tables.nodes, {"rates": nan})
    with pytest.raises(DataError, match=r"rates property 'rating', row 1: NaN"):
        write_import_files(bad, tiny_cfg.extract, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    listy = rates.append_column("tags", pa.array([[1]] * rates.num_rows))
    with pytest.raises(ConfigError, match="'tags' is list<item: int64>"):
        write_import_files(
            GraphTables(tables.nodes, {"rates": listy}), tiny_cfg.extract, tmp_path / "b"
        )
    spaced = dataclasses.replace(
        tiny_cfg.extract,
        edges={"rates": dataclasses.replace(tiny_cfg.extract.edges["rates"], type="HAS RATED")},
    )
    with pytest.raises(ConfigError, match="'HAS RATED' is not a plain name"):
        write_import_files(tables, spaced, tmp_path / "c")
    assert not any(tmp_path.glob("[abc]"))


def test_multiline_strings_ask_for_multiline_fields(tiny_cfg, tmp_path):
    tables = tables_of(tiny_cfg)
    movies = tables.nodes["movie"]
    titles = movies["title"].to_pylist()
    titles[3] = "two\nlines"
    movies = movies.set_column(movies.column_names.index("title"), "title", pa.array(titles))
    out = write_import_files(
        GraphTables({**tables.nodes, "movie": movies}, tables.edges),
        tiny_cfg.extract,
        tmp_path / "m",
    )
    assert "--multiline-fields=true" in import_command(out)


def test_cli_writes_the_files_and_prints_the_command(tiny_root, tmp_path, capsys):
    import yaml

    from tests.conftest import tiny_config_dict

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, tmp_path)))
    assert (
        main(["load", "--config", str(path), "--import-files", str(tmp_path / "imp"), "--quiet"])
        == 0
    )
    out = capsys.readouterr().out
    assert "neo4j-admin database import full neo4j --nodes=" in out
    assert (tmp_path / "imp" / "rels-rates.csv").is_file()
    # a second run refuses: nothing is overwritten
    assert (
        main(["load", "--config", str(path), "--import-files", str(tmp_path / "imp"), "--quiet"])
        == 2
    )
    assert "exists and is not an empty folder" in capsys.readouterr().err


def test_import_files_are_neo4js_only(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    args = [
        "load",
        "--config",
        "configs/social-gremlin.yaml",
        "--import-files",
        str(tmp_path / "x"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "extract.source is 'gremlin'" in err
    assert not (tmp_path / "x").exists()
