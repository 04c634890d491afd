"""``graphrec inspect`` for a Gremlin graph: what it holds, to write the extract schema from:
every vertex and edge label with its count, property names and types from a sample, and
for edge labels the vertex labels at their ends in the sample."""

from __future__ import annotations

from graphrec.config import GremlinConfig
from graphrec.connectors.gremlin import Gremlin, server

SAMPLE_ROWS = 200
_TYPES = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}


def inspect_gremlin(cfg: GremlinConfig, sample: int = SAMPLE_ROWS) -> dict:
    from gremlin_python.process.graph_traversal import __
    from gremlin_python.process.traversal import T

    out: dict = {"url": server(cfg), "vertices": {}, "edges": {}}
    conn = Gremlin(cfg)
    try:
        g = conn.g
        for kind, step in (("vertices", g.V), ("edges", g.E)):
            counts = conn.all(step().group_count().by(T.label), "counting labels")
            for label, count in sorted((counts[0] if counts else {}).items()):
                rows = conn.all(step().has_label(label).limit(sample).value_map(), "sampling")
                props: dict[str, set] = {}
                for row in rows:
                    for k, v in row.items():
                        value = v[0] if isinstance(v, list) and v else v
                        props.setdefault(str(k), set()).add(_TYPES.get(type(value), "null"))
                entry = {
                    "count": int(count),
                    "properties": {k: sorted(v) for k, v in sorted(props.items())},
                }
                if kind == "edges":
                    ends = conn.all(
                        step().has_label(label).limit(sample)
                        .project("from", "to").by(__.out_v().label()).by(__.in_v().label())
                        .dedup(),
                        "sampling",
                    )  # fmt: skip
                    entry["endpoints"] = sorted(ends, key=lambda e: (e["from"], e["to"]))
                out[kind][label] = entry
    finally:
        conn.close()
    return out


def format_inspection(info: dict) -> str:
    lines = [f"gremlin {info['url']}"]
    for kind in ("vertices", "edges"):
        for label, d in info[kind].items():
            props = ", ".join(f"{k}: {'|'.join(v)}" for k, v in d["properties"].items())
            ends = "; ".join(f"{e['from']}->{e['to']}" for e in d.get("endpoints", []))
            lines.append(f"  {label}  {d['count']:,} {kind}  {{{props}}}  {ends}".rstrip())
    return "\n".join(lines)
