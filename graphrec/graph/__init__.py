"""Stage 2, graph: Arrow -> HeteroData (ids, features, reverse edges, splits)."""

from graphrec.graph.hetero import Graph, build_graph, message_graph
from graphrec.graph.split import EdgeSplit, all_train, split_edges, split_target

__all__ = [
    "EdgeSplit",
    "Graph",
    "all_train",
    "build_graph",
    "message_graph",
    "split_edges",
    "split_target",
]
