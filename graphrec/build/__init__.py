"""Stage 2, build: Arrow -> HeteroData (ids, features, reverse edges, splits)."""

from graphrec.build.graph import Graph, build_graph, message_graph
from graphrec.build.split import EdgeSplit, all_train, split_edges

__all__ = ["EdgeSplit", "Graph", "all_train", "build_graph", "message_graph", "split_edges"]
