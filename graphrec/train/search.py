"""Settings chosen on validation: a geometric search over one positive setting.

Used by the closed-form models (their regularisation) and by ``graphrec compare``'s
baselines. Only validation is ever looked at; the test split never reaches here.
"""

from __future__ import annotations

from collections.abc import Callable


def nice(value: float) -> float:
    """``value`` to 4 significant digits: the values a search tries and reports."""
    return float(f"{value:.4g}")


def ladder(
    evaluate: Callable[[float], float], start: float, factor: float = 4.0, most: int = 8
) -> tuple[float, float, list[tuple[float, float]]]:
    """Maximise ``evaluate(x)`` over ``x = start * factor**n``: try ``start``, then step up
    while it improves; if the first step up did not, step down while it improves. Stops
    at ``most`` evaluations. Returns ``(best x, its value, every (x, value) tried)``.

    Values are kept to 4 significant digits (``lam=330``, not ``331.2174...``). A non-finite
    value counts as worse than any finite one.
    """
    if not start > 0 or not factor > 1:
        raise ValueError(f"ladder: start {start} and factor {factor} must be > 0 and > 1")
    tried: dict[float, float] = {}

    def val(x: float) -> float:
        if x not in tried:
            v = float(evaluate(x))
            tried[x] = v if v == v and abs(v) != float("inf") else float("-inf")
        return tried[x]

    x = nice(start)
    val(x)
    for step in (factor, 1 / factor):
        while len(tried) < most and val(nice(x * step)) > tried[x]:
            x = nice(x * step)
        if x != nice(start):
            break  # it moved up: below the start was worse already
    return x, tried[x], sorted(tried.items())
