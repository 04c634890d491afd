"""Stage 4, recommend: top-k unseen items for every user (``batch``), and the test
evaluation of a trained model with its two named protocols (``evaluate``)."""

from graphrec.recommend.batch import recommend_all
from graphrec.recommend.evaluate import TEST_INPUTS, evaluate_test, seen_edges

__all__ = ["TEST_INPUTS", "evaluate_test", "recommend_all", "seen_edges"]
