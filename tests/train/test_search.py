"""The geometric search closed-form models and compare's baselines choose settings with."""

import math

import pytest

from graphrec.train.search import ladder


def peaked(at: float):
    calls = []

    def evaluate(x: float) -> float:
        calls.append(x)
        return -abs(math.log(x / at))

    return evaluate, calls


@pytest.mark.parametrize(
    "peak,expected",
    [
        (1600.0, [100.0, 400.0, 1600.0, 6400.0]),  # up until a step gets worse
        (6.25, [1.562, 6.25, 25.0, 100.0, 400.0]),  # up is worse: down instead
        (100.0, [25.0, 100.0, 400.0]),  # the start is best
    ],
)
def test_the_ladder_walks_to_the_peak_and_stops_one_step_past_it(peak, expected):
    evaluate, calls = peaked(peak)
    best, value, tried = ladder(evaluate, 100.0, factor=4.0)
    assert best == peak and value == 0.0
    assert [x for x, _ in tried] == expected
    assert len(calls) == len(set(calls))  # nothing evaluated twice


def test_the_ladder_stops_at_most_evaluations_and_rounds_values():
    evaluate, calls = peaked(1e9)
    best, _, tried = ladder(evaluate, 3.3333333, factor=3.0, most=4)
    assert len(calls) == 4 and best == 90.0
    assert [x for x, _ in tried] == [3.333, 9.999, 30.0, 90.0]


def test_a_non_finite_value_loses_to_any_finite_one():
    best, value, _ = ladder(lambda x: float("nan") if x > 1 else -5.0, 1.0, factor=2.0)
    assert best == 1.0 and value == -5.0


@pytest.mark.parametrize("start,factor", [(0.0, 2.0), (-1.0, 2.0), (1.0, 1.0)])
def test_bad_arguments_are_refused(start, factor):
    with pytest.raises(ValueError):
        ladder(lambda x: 0.0, start, factor)
