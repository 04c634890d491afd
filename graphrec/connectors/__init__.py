"""Connections to graph databases, shared by the sources (extract) and sinks (write back)."""
