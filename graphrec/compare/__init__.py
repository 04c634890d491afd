"""Quality comparison: graphrec's models against standard baselines, one protocol for all."""

from graphrec.compare.runner import Protocol, run_baseline, run_compare, run_model

__all__ = ["Protocol", "run_baseline", "run_compare", "run_model"]
