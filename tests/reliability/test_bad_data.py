"""Bad data in, one line out: every bad input file ends in ``graphrec: error: ...`` naming
the file (and column and row where there is one), exit status 2, and nothing written.

Each case writes the tiny graph, breaks it, and runs the real CLI (``graphrec run``) in
this process; all of them fail while extracting, before any training. The positive cases
at the end call the extract stage directly.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml

from graphrec.cli import main
from graphrec.loaders import extract, make_source
from tests.conftest import make_config, tiny_config_dict, write_tiny_graph
from tests.reliability.conftest import assert_one_line, tree

# -- breaking the tiny graph ----------------------------------------------------------------


def edit_csv(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    """Rewrite a CSV file after ``edit`` changed its rows in place (rows[0] is the header,
    so rows[n] is data row n)."""
    rows = list(csv.reader(open(path, newline="")))
    edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def set_value(path: Path, row: int, column: str, value: str) -> None:
    def edit(rows):
        rows[row][rows[0].index(column)] = value

    edit_csv(path, edit)


def add_score(root: Path, cfg: dict) -> None:
    """Give movies a float property ``score`` (a node property that is not a label)."""

    def edit(rows):
        rows[0].append("score")
        for i, r in enumerate(rows[1:], 1):
            r.append(str(i / 4))

    edit_csv(root / "movies.csv", edit)
    cfg["extract"]["nodes"]["movie"]["properties"]["score"] = "float"


def to_parquet(root: Path, cfg: dict, stem: str, types: dict | None = None) -> Path:
    """Replace ``stem``.csv by ``stem``.parquet (same rows) and point the config at it."""
    table = pcsv.read_csv(root / f"{stem}.csv")
    for name, typ in (types or {}).items():
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(typ))
    path = root / f"{stem}.parquet"
    pq.write_table(table, path)
    (root / f"{stem}.csv").unlink()
    kind, name = ("edges", "rates") if stem == "ratings" else ("nodes", "movie")
    cfg["extract"][kind][name]["file"] = f"{stem}.parquet"
    return path


def set_parquet_value(path: Path, row: int, column: str, value) -> None:
    table = pq.read_table(path)
    values = table[column].to_pylist()
    values[row - 1] = value
    idx = table.schema.get_field_index(column)
    table = table.set_column(idx, column, pa.array(values, table.schema.field(column).type))
    pq.write_table(table, path)


@dataclass
class Case:
    name: str
    breaks: Callable[[Path, dict], None]
    """Break the graph under root and/or the config dict, in place."""
    expect: list[str]
    """Substrings of the one error line (besides the ``graphrec: error: `` prefix)."""


def non_finite(fmt: str, where: str, value: float) -> Case:
    """``value`` (nan, inf, -inf) in a float column: the edge label ``rating`` or the node
    property ``score``, in CSV or Parquet."""
    text = {"nan": "NaN", "inf": "inf", "-inf": "-inf"}[str(value)]
    stem, column, row = ("ratings", "rating", 17) if where == "edge" else ("movies", "score", 4)

    def breaks(root: Path, cfg: dict) -> None:
        add_score(root, cfg)
        if fmt == "csv":
            set_value(root / f"{stem}.csv", row, column, text)
        else:
            set_parquet_value(to_parquet(root, cfg, stem), row, column, value)

    return Case(
        f"{fmt}-{where}-{text}",
        breaks,
        [f"{stem}.{fmt}, column '{column}', row {row}: {value} is not a finite number"],
    )


def csv_value(stem: str, row: int, column: str, value: str) -> Callable[[Path, dict], None]:
    def breaks(root: Path, cfg: dict) -> None:
        set_value(root / f"{stem}.csv", row, column, value)

    return breaks


def declare_string_ids(cfg: dict) -> None:
    cfg["extract"]["nodes"]["movie"]["properties"]["movieId"] = "string"


def string_id_empty(root: Path, cfg: dict) -> None:
    declare_string_ids(cfg)
    set_value(root / "movies.csv", 6, "movieId", "")


def parquet_float_ids(declared: str | None) -> Callable[[Path, dict], None]:
    def breaks(root: Path, cfg: dict) -> None:
        if declared:
            cfg["extract"]["nodes"]["movie"]["properties"]["movieId"] = declared
        to_parquet(root, cfg, "movies", {"movieId": pa.float64()})

    return breaks


def parquet_uint64_beyond_int64(root: Path, cfg: dict) -> None:
    path = to_parquet(root, cfg, "movies", {"movieId": pa.uint64()})
    set_parquet_value(path, 5, "movieId", 2**64 - 1)


def key_declared_float(root: Path, cfg: dict) -> None:
    cfg["extract"]["nodes"]["movie"]["properties"]["movieId"] = "float"


def extra_field(root: Path, cfg: dict) -> None:
    edit_csv(root / "ratings.csv", lambda rows: rows[5].append("extra"))


def missing_field(root: Path, cfg: dict) -> None:
    edit_csv(root / "ratings.csv", lambda rows: rows[9].pop())


def latin1_byte(line: int) -> Callable[[Path, dict], None]:
    def breaks(root: Path, cfg: dict) -> None:
        path = root / "movies.csv"
        lines = path.read_bytes().split(b"\n")
        lines[line - 1] = lines[line - 1].replace(b"e", b"\xe9", 1)
        path.write_bytes(b"\n".join(lines))

    return breaks


def file_is_folder(root: Path, cfg: dict) -> None:
    (root / "ratings.csv").rename(root / "part-0.csv")
    (root / "ratings.csv").mkdir()
    (root / "part-0.csv").rename(root / "ratings.csv" / "part-0.csv")


def root_missing(root: Path, cfg: dict) -> None:
    cfg["extract"]["root"] = str(root.parent / "no-such-folder")


def parquet_corrupt_pages(root: Path, cfg: dict) -> None:
    path = to_parquet(root, cfg, "ratings")
    meta = pq.ParquetFile(path).metadata
    offset = meta.row_group(0).column(2).data_page_offset  # a page header mid-file
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 24)


def parquet_truncated(root: Path, cfg: dict) -> None:
    path = to_parquet(root, cfg, "ratings")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def parquet_not_parquet(root: Path, cfg: dict) -> None:
    (root / "ratings.csv").rename(root / "ratings.parquet")
    cfg["extract"]["edges"]["rates"]["file"] = "ratings.parquet"


def unreadable(root: Path, cfg: dict) -> None:
    """Made unreadable (chmod 000) by the test itself, after hashing the data files."""


def broken_link(root: Path, cfg: dict) -> None:
    (root / "movies.csv").rename(root / "movies-old.csv")
    (root / "movies.csv").symlink_to(root / "no-such-movies.csv")


def empty_file(root: Path, cfg: dict) -> None:
    (root / "ratings.csv").write_text("")


def header_only(root: Path, cfg: dict) -> None:
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")


def missing_column(root: Path, cfg: dict) -> None:
    edit_csv(root / "ratings.csv", lambda rows: [r.pop(2) for r in rows])


def duplicate_node_id(root: Path, cfg: dict) -> None:
    with open(root / "movies.csv", "a") as f:
        f.write("105,Again,Drama\n")


def missing_file(root: Path, cfg: dict) -> None:
    (root / "movies.csv").unlink()


def label_missing(root: Path, cfg: dict) -> None:
    set_value(root / "ratings.csv", 11, "rating", "")


R, M = "ratings.csv", "movies.csv"
USER_FIX = "(declare it as text: extract.nodes.user.properties: {userId: string})"
MOVIE_FIX = "(declare it as text: extract.nodes.movie.properties: {movieId: string})"

CASES = [
    *(
        non_finite(fmt, where, value)
        for fmt in ("csv", "parquet")
        for where in ("edge", "node")
        for value in (float("nan"), float("inf"), float("-inf"))
    ),
    # ids: never a silent switch of type
    Case(
        "id-1.0-edge",
        csv_value("ratings", 3, "userId", "1.0"),
        [R, "column 'userId', row 3: '1.0' is not an integer id " + USER_FIX],
    ),
    Case(
        "id-2.5-node",
        csv_value("movies", 4, "movieId", "2.5"),
        [M, "column 'movieId', row 4: '2.5' is not an integer id " + MOVIE_FIX],
    ),
    Case(
        "id-beyond-int64-edge",
        csv_value("ratings", 8, "movieId", "99999999999999999999"),
        [R, "column 'movieId', row 8: '99999999999999999999' is not an integer id " + MOVIE_FIX],
    ),
    Case(
        "id-abc-node",
        csv_value("movies", 2, "movieId", "abc"),
        [M, "column 'movieId', row 2: 'abc' is not an integer id " + MOVIE_FIX],
    ),
    Case(
        "id-parquet-float-column",
        parquet_float_ids(None),
        [
            "movies.parquet, column 'movieId', row 1: 101.0 is a floating-point id (column type "
            "double); write ids as integers, or as text declared "
            "extract.nodes.movie.properties: {movieId: string}"
        ],
    ),
    Case(
        "id-parquet-float-column-declared-string",
        parquet_float_ids("string"),
        ["movies.parquet, column 'movieId', row 1: 101.0 is a floating-point id"],
    ),
    Case(
        "id-parquet-uint64-beyond-int64",
        parquet_uint64_beyond_int64,
        [
            "movies.parquet, column 'movieId', row 5: 18446744073709551615 is beyond the int64 "
            "range of integer ids " + MOVIE_FIX
        ],
    ),
    Case("id-string-empty", string_id_empty, [M, "column 'movieId', row 6: key is empty"]),
    Case(
        "id-int-empty", csv_value("ratings", 2, "userId", ""), [R, "'userId', row 2: key is empty"]
    ),
    Case(
        "id-declared-float",
        key_declared_float,
        ["extract.nodes.movie.properties.movieId: a key is int or string, not float"],
    ),
    # file faults
    Case("csv-extra-field", extra_field, [R, "row 5: 5 fields, the header has 4"]),
    Case("csv-missing-field", missing_field, [R, "row 9: 3 fields, the header has 4"]),
    Case("csv-latin1-byte", latin1_byte(7), [M, "line 7: byte 0xe9 is not UTF-8 text"]),
    Case("csv-latin1-header", latin1_byte(1), [M, "line 1: byte 0xe9 is not UTF-8 text"]),
    Case("file-is-folder", file_is_folder, [R, "is a folder, not a file", "ratings.csv/*"]),
    Case("root-missing", root_missing, ["extract.root", "no-such-folder", "does not exist"]),
    Case("parquet-corrupt-pages", parquet_corrupt_pages, ["ratings.parquet: corrupt Parquet data"]),
    Case("parquet-truncated", parquet_truncated, ["ratings.parquet: not a readable Parquet"]),
    Case("parquet-not-parquet", parquet_not_parquet, ["ratings.parquet: not a readable Parquet"]),
    Case("unreadable-file", unreadable, [M, "Permission denied"]),
    Case("broken-link", broken_link, [M, "No such file or directory"]),
    # the rest of the catalogue
    Case("empty-file", empty_file, [R, "file is empty"]),
    Case("header-only", header_only, [R, "no rows"]),
    Case("missing-column", missing_column, [R, "missing column 'rating'"]),
    Case("duplicate-node-id", duplicate_node_id, [M, "row 21: duplicate movie id 105"]),
    Case(
        "dangling-edge",
        csv_value("ratings", 3, "movieId", "999"),
        [R, "column 'movieId', row 3: 999 is not a movie id (dangling edge)"],
    ),
    Case("not-a-number", csv_value("ratings", 5, "rating", "four"), [R, "row 5: 'four' is not"]),
    Case("label-missing", label_missing, [R, "column 'rating', row 11: missing"]),
    Case("missing-file", missing_file, ["extract.nodes.movie: no file matches", M]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_data_is_one_line_and_writes_nothing(case: Case, tmp_path: Path, capsys) -> None:
    if case.breaks is unreadable and os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading")
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    case.breaks(root, cfg)
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    data_before = tree(root)
    if case.breaks is unreadable:
        os.chmod(root / "movies.csv", 0)
    entries_before = {p.name for p in tmp_path.iterdir()}

    rc = main(["run", "--config", str(cfg_path), "--quiet"])

    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2, err
    assert_one_line(err, *case.expect)
    # nothing written: no run folder, no completed snapshot, nothing else new
    assert not (tmp_path / "run").exists()
    appeared = {p.name for p in tmp_path.iterdir()} - entries_before
    assert appeared <= {"snapshots"}, appeared
    assert not list((tmp_path / "snapshots").rglob("manifest.json"))
    if case.breaks is unreadable:
        os.chmod(root / "movies.csv", 0o644)
    assert tree(root) == data_before


def test_unreadable_file_simulated(tmp_path: Path, capsys, monkeypatch) -> None:
    """chmod 000 does not stop root; here opening the file fails as it would for a user."""
    import builtins

    import graphrec.loaders.files as files

    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config_dict(root, tmp_path)))

    def denied(path, *args, **kwargs):
        if str(path).endswith("movies.csv"):
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", denied, raising=False)
    rc = main(["run", "--config", str(cfg_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("graphrec: error: ") and "movies.csv: [Errno 13] Permission denied" in err
    assert not (tmp_path / "run").exists()


# -- what still works -----------------------------------------------------------------------


def read(cfg: dict):
    return extract(make_source(make_config(cfg).extract), {"rates": ["rating"]}, progress=False)


def test_string_ids_keep_their_text(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    declare_string_ids(cfg)
    cfg["extract"]["nodes"]["user"]["properties"] = {"userId": "string"}
    set_value(root / "movies.csv", 1, "movieId", "1.0")
    set_value(root / "movies.csv", 2, "movieId", "abc")

    def edit(rows):
        for r in rows[1:]:
            r[1] = {"101": "1.0", "102": "abc"}.get(r[1], r[1])
        rows[1][0] = "007"

    edit_csv(root / "ratings.csv", edit)
    g = read(cfg)
    movies, rates = g.nodes["movie"], g.edges["rates"]
    assert movies.schema.field("id").type == pa.string()
    assert movies.column("id").to_pylist()[:3] == ["1.0", "abc", "103"]
    assert rates.schema.field("src").type == pa.string()
    assert rates.schema.field("dst").type == pa.string()
    assert {"1.0", "abc"} <= set(rates.column("dst").to_pylist())
    assert "007" in g.nodes["user"].column("id").to_pylist()  # not 7


def test_int_ids_stay_int64(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    to_parquet(root, cfg, "movies", {"movieId": pa.int32()})
    g = read(cfg)
    assert g.nodes["movie"].schema.field("id").type == pa.int64()
    assert g.nodes["user"].schema.field("id").type == pa.int64()
    assert g.edges["rates"].schema.field("src").type == pa.int64()
    assert g.edges["rates"].schema.field("dst").type == pa.int64()
    assert g.nodes["movie"].column("id").to_pylist()[:2] == [101, 102]


def test_parquet_int_ids_declared_string_become_text(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    declare_string_ids(cfg)
    to_parquet(root, cfg, "movies")
    to_parquet(root, cfg, "ratings")
    g = read(cfg)
    assert g.nodes["movie"].column("id").to_pylist()[:2] == ["101", "102"]
    assert g.edges["rates"].schema.field("dst").type == pa.string()
    assert g.edges["rates"].schema.field("src").type == pa.int64()  # users: undeclared


def test_null_in_a_float_property_is_allowed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    add_score(root, cfg)
    set_value(root / "movies.csv", 3, "score", "")
    set_value(root / "movies.csv", 4, "score", "NA")
    scores = read(cfg).nodes["movie"].column("score").to_pylist()
    assert scores[2] is None and scores[3] is None and scores[0] == 0.25


def test_bom_and_crlf_read_the_same(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_tiny_graph(root)
    cfg = tiny_config_dict(root, tmp_path)
    plain = read(cfg)
    for name in ("movies.csv", "ratings.csv"):
        path = root / name
        path.write_bytes(
            b"\xef\xbb\xbf" + path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        )
    again = read(cfg)
    assert again.nodes["movie"].equals(plain.nodes["movie"])
    assert again.edges["rates"].equals(plain.edges["rates"])
