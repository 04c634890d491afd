"""Feature encoders: what ``auto`` chooses for each column type, what each kind produces,
and that a fitted state (JSON) encodes a later column exactly as the first."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from graphrec.config import FeatureSpec
from graphrec.errors import ConfigError
from graphrec.graph import encoders


def spec(**kw) -> FeatureSpec:
    return FeatureSpec("p", **kw)


def roundtrip(state: dict) -> dict:
    return json.loads(json.dumps(state))  # what encoders.json keeps


@pytest.mark.parametrize(
    "values, kind",
    [
        ([True, False, None], "bool"),
        ([1, 2, 3], "numeric"),
        ([1.5, None, 2.0], "numeric"),
        ([dt.date(2020, 1, 5), dt.date(2021, 7, 1)], "datetime"),
        (["Action|Comedy", "Drama", "Comedy|Drama", "Action"], "multi_hot"),
        (["Trailers,Deleted Scenes", "Trailers", "Commentaries,Trailers"], "multi_hot"),
        (["PG", "G", "R", "PG", "NC-17"], "category"),
        (["A brave knight saves the day", "Two friends cross a river slowly"], "text"),
        ([None, None], None),
    ],
)
def test_auto_chooses_by_type_and_values(values, kind):
    assert encoders.choose(pa.array(values), spec())[0] == kind


def test_the_word_rule_is_configurable():
    col = pa.array(["big red dog", "small blue cat", "old grey owl"])
    assert encoders.choose(col, spec())[0] == "category"
    assert encoders.choose(col, spec(auto_text_words=2))[0] == "text"


def test_free_text_with_commas_is_not_multi_hot():
    col = pa.array([f"A story of {i} people, told slowly, with care and a dog" for i in range(50)])
    assert encoders.choose(col, spec())[0] == "text"


def test_numeric_scalers_impute_and_mark_missing():
    col = pa.array([1.0, 3.0, None, 5.0])
    st = encoders.fit(col, spec(kind="numeric"), "p")
    out = encoders.transform(col, roundtrip(st), "p")
    mean, std = 3.0, np.std([1.0, 3.0, 5.0])
    want = torch.tensor([(1 - mean) / std, 0, 0, (5 - mean) / std], dtype=torch.float32)
    assert torch.allclose(out[:, 0], want)
    assert out[:, 1].tolist() == [0, 0, 1, 0]  # the missing indicator
    mm = encoders.transform(col, encoders.fit(col, spec(kind="numeric", scaler="minmax"), "p"), "p")
    assert mm[:, 0].tolist() == [0.0, 0.5, 0.5, 1.0]
    rg = encoders.fit(pa.array(np.arange(1000.0)), spec(kind="numeric", scaler="rankgauss"), "p")
    z = encoders.transform(pa.array([0.0, 499.5, 999.0]), roundtrip(rg), "p")[:, 0]
    assert z[0] < -2.5 and abs(z[1]) < 0.01 and z[2] > 2.5  # ranks through the normal


def test_a_column_without_missing_values_gets_no_indicator():
    col = pa.array([1, 2, 3])
    assert encoders.transform(col, encoders.fit(col, spec(), "p"), "p").shape == (3, 1)


def test_buckets_are_quantiles_with_a_missing_bucket():
    col = pa.array([float(i) for i in range(100)] + [None])
    st = encoders.fit(col, spec(kind="bucket", buckets=4), "p")
    out = encoders.transform(col, st, "p")
    assert out.shape == (101, 5) and out.sum(1).eq(1).all()
    assert out[:100].sum(0).tolist() == [25, 25, 25, 25, 0] and out[100, 4] == 1


def test_category_keeps_the_most_frequent_and_sends_the_rest_and_unseen_to_other():
    col = pa.array(["a", "a", "b", "b", "c", None])
    st = roundtrip(encoders.fit(col, spec(kind="category", max_categories=2), "p"))
    assert st["vocab"] == ["a", "b"] and st["distinct"] == 3
    out = encoders.transform(pa.array(["b", "c", "zzz", None]), st, "p")
    assert out.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]]


def test_multi_hot_detects_the_separator_and_keeps_other_only_when_cut():
    col = pa.array(["x|y", "y", None, "z| x"])
    st = encoders.fit(col, spec(kind="multi_hot"), "p")
    assert st["separator"] == "|" and not st["other"]
    assert encoders.transform(col, st, "p").tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]]
    cut = encoders.fit(col, spec(kind="multi_hot", max_categories=1), "p")
    assert cut["vocab"] == ["x"] and cut["other"]
    assert encoders.transform(pa.array(["y|x", "new"]), cut, "p").tolist() == [[1, 1], [0, 1]]


def test_datetime_gives_year_and_cyclical_month_and_weekday():
    col = pa.array([dt.datetime(2020, 1, 6), dt.datetime(2022, 7, 9), None], pa.timestamp("s"))
    st = encoders.fit(col, spec(), "p")
    out = encoders.transform(col, roundtrip(st), "p")
    assert st["kind"] == "datetime" and out.shape == (3, 6)
    assert out[0, 0] == -1 and out[1, 0] == 1  # year standardised
    assert torch.allclose(out[0, 1:3], torch.tensor([0.0, 1.0]), atol=1e-6)  # January
    assert out[2].tolist() == [0, 0, 0, 0, 0, 1]


def test_bool_with_missing():
    col = pa.array([True, None, False])
    st = encoders.fit(col, spec(), "p")
    assert encoders.transform(col, st, "p").tolist() == [[1, 0], [0, 1], [0, 0]]


def test_text_goes_through_the_given_embedder():
    col = pa.array(["one long sentence of many words here", "another long sentence of words"])
    st = encoders.fit(col, spec(), "p")
    assert st == {"property": "p", "kind": "text", "why": st["why"], "model": "all-MiniLM-L6-v2"}
    out = encoders.transform(col, st, "p", text=lambda arr, model: torch.ones(len(arr), 4))
    assert out.shape == (2, 4)


def test_an_all_null_column_is_left_out_by_auto_and_refused_when_explicit():
    col = pa.array([None, None], pa.float64())
    assert encoders.fit(col, spec(), "p") is None
    with pytest.raises(ConfigError, match="p: no numeric values"):
        encoders.fit(col, spec(kind="numeric"), "p")


def test_numbers_as_text_are_refused_for_a_numeric_kind():
    with pytest.raises(ConfigError, match="p: a numeric feature needs numbers, not string"):
        encoders.fit(pa.array(["1", "x"]), spec(kind="numeric"), "p")


def test_numbers_written_as_text_are_numeric_and_mixed_ones_warn():
    col = pa.array(["1", "2.5", None, "4"])
    st = encoders.fit(col, spec(), "p")
    assert (st["kind"], st["why"], "warning" in st) == ("numeric", "numbers written as text", False)
    assert encoders.transform(col, roundtrip(st), "p")[:, 1].tolist() == [0, 0, 1, 0]
    mixed = pa.array(["1", "2", "3", "n/a"])
    st = encoders.fit(mixed, spec(), "p")
    assert st["kind"] == "numeric" and "1 of 4 sampled values are not numbers" in st["warning"]
    assert "'n/a'" in st["warning"]
    assert encoders.transform(mixed, st, "p")[:, 1].tolist() == [0, 0, 0, 1]  # counted missing


def test_a_category_past_the_limit_warns_in_the_build(tiny_root, tmp_path, capsys):
    from graphrec.graph.hetero import build_graph
    from graphrec.loaders import extract, make_source
    from tests.conftest import make_config, tiny_config_dict

    data = tiny_config_dict(tiny_root, tmp_path)
    data["build"]["features"] = {"movie": [{"property": "genres", "max_categories": 2}]}
    cfg = make_config(data)
    g = build_graph(extract(make_source(cfg.extract), progress=False), cfg, progress=False)
    err = capsys.readouterr().err
    assert "graphrec: warning: build.features.movie.genres: 5 distinct values; the 2 most" in err
    assert g.x["movie"].shape == (20, 3)  # two genres + OTHER
