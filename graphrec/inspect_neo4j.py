"""``graphrec inspect``: what a Neo4j database holds, to write the extract schema from."""

from __future__ import annotations

from graphrec.config import Neo4jConfig
from graphrec.connectors.neo4j import close_quietly, connect, open_session, server, translate
from graphrec.connectors.neo4j import quote_any as q


def inspect_neo4j(cfg: Neo4jConfig) -> dict:
    """Labels and relationship types with counts, property keys and types, endpoints.

    Names are the database's own, so they are quoted as they are (any characters), not
    checked like names from config. The URI is shown without userinfo."""
    out: dict = {"uri": server(cfg), "database": cfg.database, "labels": {}, "relationships": {}}
    driver = None
    try:
        with translate(cfg):
            driver = connect(cfg)
            with open_session(driver, cfg) as s:
                _inspect(s, out)
    finally:
        close_quietly(driver)
    return out


def _inspect(s, out: dict) -> None:
    for rec in list(s.run("CALL db.labels() YIELD label RETURN label ORDER BY label")):
        lab = rec["label"]
        n = s.run(f"MATCH (n:{q(lab)}) RETURN count(n) AS c").single()["c"]
        out["labels"][lab] = {"count": n, "properties": {}}
    for rec in s.run("CALL db.schema.nodeTypeProperties()"):
        for lab in rec["nodeLabels"]:
            if lab in out["labels"] and rec["propertyName"]:
                out["labels"][lab]["properties"][rec["propertyName"]] = rec["propertyTypes"]
    types = s.run("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t ORDER BY t")
    for rec in list(types):
        t = rec["t"]
        n = s.run(f"MATCH ()-[r:{q(t)}]->() RETURN count(r) AS c").single()["c"]
        ends = s.run(
            f"MATCH (a)-[r:{q(t)}]->(b) WITH a, b LIMIT 1000 "
            "RETURN DISTINCT labels(a) AS src, labels(b) AS dst"
        ).data()
        out["relationships"][t] = {"count": n, "properties": {}, "endpoints": ends}
    for rec in s.run("CALL db.schema.relTypeProperties()"):
        t = _unquote(rec["relType"])
        if t in out["relationships"] and rec["propertyName"]:
            out["relationships"][t]["properties"][rec["propertyName"]] = rec["propertyTypes"]


def _unquote(rel_type: str) -> str:
    """``:`RATED``` -> ``RATED`` (a doubled backtick inside is one backtick)."""
    t = rel_type[1:] if rel_type.startswith(":") else rel_type
    if len(t) >= 2 and t[0] == t[-1] == "`":
        t = t[1:-1].replace("``", "`")
    return t


def format_inspection(info: dict) -> str:
    lines = [f"neo4j {info['uri']} database {info['database']!r}", "labels:"]
    for lab, d in info["labels"].items():
        props = ", ".join(f"{k}: {'|'.join(v)}" for k, v in d["properties"].items())
        lines.append(f"  :{lab}  {d['count']:,} nodes  {{{props}}}")
    lines.append("relationship types:")
    for t, d in info["relationships"].items():
        props = ", ".join(f"{k}: {'|'.join(v)}" for k, v in d["properties"].items())
        ends = "; ".join(f"{e['src']}->{e['dst']}" for e in d["endpoints"])
        lines.append(f"  [:{t}]  {d['count']:,} relationships  {{{props}}}  {ends}")
    return "\n".join(lines)
