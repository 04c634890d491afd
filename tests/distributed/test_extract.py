"""Extraction through Ray tasks equals extraction by threads, and a partition's bad row is
the same one-line error, raised in the driver."""

from __future__ import annotations

import pytest

from graphrec.errors import DataError
from graphrec.loaders import extract, make_source

pytestmark = pytest.mark.ray


def test_ray_tasks_read_the_same_tables_as_threads(tiny_cfg, ray_cluster):
    from graphrec.distributed.extract import RayReadParts

    source = make_source(tiny_cfg.extract)
    here = extract(source, progress=False)
    reader = RayReadParts()
    there = extract(source, progress=False, read_parts=reader)
    for kind in ("nodes", "edges"):
        mine, theirs = getattr(here, kind), getattr(there, kind)
        assert set(mine) == set(theirs)
        for name in mine:
            assert theirs[name].equals(mine[name]), name
    assert len(reader.nodes) == 2  # movies.csv, ratings.csv: one task each


def test_a_bad_row_read_by_a_ray_task_is_one_line(tiny_cfg, tiny_root, ray_cluster):
    from graphrec.distributed.extract import RayReadParts

    with open(tiny_root / "ratings.csv", "a") as f:
        f.write("1,999,4.0,123\n")  # movie 999 does not exist: a dangling edge
    with pytest.raises(DataError) as exc:
        extract(make_source(tiny_cfg.extract), progress=False, read_parts=RayReadParts())
    text = str(exc.value)
    assert len(text.splitlines()) == 1 and "999" in text and "dangling" in text
    with open(tiny_root / "ratings.csv", "a") as f:
        f.write("2,101,not-a-number,123\n")  # a value the task itself refuses
    with pytest.raises(DataError) as exc:
        extract(make_source(tiny_cfg.extract), progress=False, read_parts=RayReadParts())
    assert len(str(exc.value).splitlines()) == 1 and "ratings.csv" in str(exc.value)
