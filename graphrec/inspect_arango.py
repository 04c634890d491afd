"""``graphrec inspect`` for ArangoDB: what a database holds, to write the extract schema
from: every collection with its kind and count, attribute names and types from a sample of
documents, and for edge collections the endpoint collections seen in the sample."""

from __future__ import annotations

from graphrec.config import ArangoConfig
from graphrec.connectors.arango import connect, server, translate

SAMPLE = "FOR d IN @@c LIMIT @n RETURN d"
"""A sample of a collection's documents."""
SAMPLE_ROWS = 200
_TYPES = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}


def inspect_arango(cfg: ArangoConfig, sample: int = SAMPLE_ROWS) -> dict:
    out: dict = {"url": server(cfg), "database": cfg.database, "collections": {}}
    with translate(cfg, "inspecting"):
        db = connect(cfg)
        for c in sorted(db.collections(), key=lambda c: c["name"]):
            if c["system"]:
                continue
            name = c["name"]
            docs = list(db.aql.execute(SAMPLE, bind_vars={"@c": name, "n": sample}))
            attrs: dict[str, set] = {}
            ends: set = set()
            for d in docs:
                for k, v in d.items():
                    if k not in ("_key", "_id", "_rev", "_from", "_to"):
                        attrs.setdefault(k, set()).add(_TYPES.get(type(v), "null"))
                if c["type"] == "edge":
                    ends.add((d["_from"].split("/")[0], d["_to"].split("/")[0]))
            out["collections"][name] = {
                "kind": c["type"],
                "count": int(db.collection(name).count()),
                "attributes": {k: sorted(v) for k, v in sorted(attrs.items())},
                **({"endpoints": [{"from": a, "to": b} for a, b in sorted(ends)]}
                   if c["type"] == "edge" else {}),
            }  # fmt: skip
    return out


def format_inspection(info: dict) -> str:
    lines = [f"arango {info['url']} database {info['database']!r}"]
    for name, d in info["collections"].items():
        attrs = ", ".join(f"{k}: {'|'.join(v)}" for k, v in d["attributes"].items())
        ends = "; ".join(f"{e['from']}->{e['to']}" for e in d.get("endpoints", []))
        what = "edges" if d["kind"] == "edge" else "documents"
        lines.append(f"  {name}  {d['count']:,} {what}  {{{attrs}}}  {ends}".rstrip())
    return "\n".join(lines)
