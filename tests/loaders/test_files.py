"""The file source: what it reads, and the one-line errors for bad files."""

import csv

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from graphrec.errors import DataError
from graphrec.loaders import extract, extract_cached, make_source
from tests.conftest import make_config, tiny_config_dict


def read(cfg):
    return extract(make_source(cfg.extract), {"rates": ["rating"]}, progress=False)


def rewrite_ratings(root, edit):
    path = root / "ratings.csv"
    rows = list(csv.reader(open(path)))
    rows = edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_reads_nodes_and_edges_normalised(tiny_cfg, tiny_root):
    g = read(tiny_cfg)
    movies, rates = g.nodes["movie"], g.edges["rates"]
    assert movies.column_names == ["id", "title", "genres"]
    assert rates.column_names == ["src", "dst", "rating", "timestamp"]
    assert rates.schema.field("rating").type == pa.float64()
    assert rates.num_rows == 12 * 8 and movies.num_rows == 20
    # users exist only as rating endpoints: their ids come from the edges, sorted
    assert g.nodes["user"].column("id").to_pylist() == list(range(1, 13))
    first = next(csv.DictReader(open(tiny_root / "ratings.csv")))
    assert rates.column("src")[0].as_py() == int(first["userId"])
    assert rates.column("rating")[0].as_py() == float(first["rating"])


def test_parquet_row_groups_are_partitions_and_read_the_same(tiny_cfg, tiny_root, tmp_path):
    table = pa.csv.read_csv(tiny_root / "ratings.csv")
    pq.write_table(table, tiny_root / "ratings.parquet", row_group_size=25)
    data = tiny_config_dict(tiny_root, tmp_path)
    data["extract"]["edges"]["rates"]["file"] = "ratings.parquet"
    data["extract"]["parallelism"] = 3
    cfg = make_config(data)
    parts = make_source(cfg.extract).partitions("edge", "rates")
    assert len(parts) == 4  # 96 rows in row groups of 25
    assert read(cfg).edges["rates"].equals(read(tiny_cfg).edges["rates"])


def test_snapshot_is_reused_until_the_data_changes(tiny_cfg, tiny_root):
    src = make_source(tiny_cfg.extract)
    first, cached1 = extract_cached(src, progress=False)
    second, cached2 = extract_cached(src, progress=False)
    assert (cached1, cached2) == (False, True)
    assert second.edges["rates"].equals(first.edges["rates"])
    rewrite_ratings(tiny_root, lambda rows: rows[:-1])
    third, cached3 = extract_cached(src, progress=False)
    assert not cached3 and third.edges["rates"].num_rows == first.edges["rates"].num_rows - 1


def test_missing_column(tiny_cfg, tiny_root):
    rewrite_ratings(tiny_root, lambda rows: [r[:2] + r[3:] for r in rows])  # drop rating
    with pytest.raises(DataError, match=r"ratings\.csv: missing column 'rating'"):
        read(tiny_cfg)


@pytest.mark.parametrize(
    "row,col,value,message",
    [
        (5, 2, "four", r"ratings\.csv, column 'rating', row 5: 'four' is not a number"),
        (7, 2, "NaN", r"ratings\.csv, column 'rating', row 7: nan is not a finite number"),
        (6, 2, "", r"ratings\.csv, column 'rating', row 6: missing \(empty or NaN\)"),
        (3, 1, "999", r"column 'movieId', row 3: 999 is not a movie id \(dangling"),
        (2, 0, "", r"ratings\.csv, column 'userId', row 2: key is empty"),
    ],
    ids=["not-a-number", "nan", "empty-label", "dangling-edge", "empty-key"],
)
def test_bad_value_names_file_column_and_row(tiny_cfg, tiny_root, row, col, value, message):
    def edit(rows):
        rows[row][col] = value  # rows[0] is the header, so rows[n] is data row n
        return rows

    rewrite_ratings(tiny_root, edit)
    with pytest.raises(DataError, match=message):
        read(tiny_cfg)


def test_duplicate_node_id(tiny_cfg, tiny_root):
    with open(tiny_root / "movies.csv", "a") as f:
        f.write("105,Again,Drama\n")
    with pytest.raises(DataError, match=r"movies\.csv, row 21: duplicate movie id 105"):
        read(tiny_cfg)


def test_empty_file(tiny_cfg, tiny_root):
    (tiny_root / "ratings.csv").write_text("")
    with pytest.raises(DataError, match=r"ratings\.csv: file is empty"):
        read(tiny_cfg)


def test_header_only_file(tiny_cfg, tiny_root):
    (tiny_root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match=r"ratings\.csv: no rows"):
        read(tiny_cfg)


def test_missing_file(tiny_cfg, tiny_root):
    (tiny_root / "movies.csv").unlink()
    with pytest.raises(DataError, match=r"no file matches .*movies\.csv"):
        read(tiny_cfg)


def test_bundled_movielens_reads_completely(monkeypatch):
    from pathlib import Path

    from graphrec.config import load_config

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    cfg = load_config("configs/debug.yaml")
    g = read(cfg)
    assert g.edges["rates"].num_rows == 100_836
    assert g.nodes["movie"].num_rows == 9_742
    assert g.nodes["user"].num_rows == 610
    assert pc.min(g.edges["rates"].column("rating")).as_py() == 0.5


def test_bad_value_past_the_first_csv_block_names_its_row(tiny_cfg, tiny_root):
    # ~1.3 MB: Arrow reads it in blocks of 1 MB, so the bad id sits in a later block, after
    # batches were already passed on; the re-read as text must not count those rows twice.
    rows = [f"{i % 500 + 1},{101 + i % 20},3.5,{1_000_000 + i}" for i in range(60_000)]
    rows[54_999] = rows[54_999].replace(str(54_999 % 500 + 1), "1.0", 1)
    text = "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n"
    assert len(text) > 1 << 20
    (tiny_root / "ratings.csv").write_text(text)
    with pytest.raises(DataError, match=r"column 'userId', row 55000: '1.0' is not an integer id"):
        read(tiny_cfg)


def test_a_duplicate_in_a_later_partition_names_its_own_value_and_row():
    import pyarrow as pa

    from graphrec.loaders.extract import _check_unique
    from graphrec.loaders.files import FileSource

    ids = pa.chunked_array([[1, 2, 3], [4, 5, 2]])
    with pytest.raises(DataError, match=r"^b\.csv, row 3: duplicate movie id 2$"):
        _check_unique(ids, [("a.csv", 3), ("b.csv", 3)], "movie", FileSource.__new__(FileSource))


@pytest.mark.parametrize(
    "ids, values",
    [
        ([5, 1, 9, 3], [1, 9, 2, 10, 0, 5]),
        (["b", "a", "ccc"], ["a", "cc", "ccc", "d", "", "b"]),
        ([7], [7, None, 8]),
        ([], [1]),
    ],
    ids=["int", "string", "null", "empty"],
)
def test_endpoint_membership_agrees_with_arrow(ids, values):
    """The once-sorted membership test of edge endpoints equals pyarrow's is_in."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from graphrec.loaders.extract import _Members

    kind = pa.string() if any(isinstance(v, str) for v in ids + values) else pa.int64()
    ids_arr, vals = pa.array(ids, kind), pa.array(values, kind)
    want = pc.is_in(vals, value_set=ids_arr).to_pylist()
    assert _Members(ids_arr).known(vals).tolist() == want
