"""``graphrec inspect``: what a Neo4j database holds, to write the extract schema from."""

from __future__ import annotations

from graphrec.config import Neo4jConfig
from graphrec.connectors.neo4j import connect, q, translate


def inspect_neo4j(cfg: Neo4jConfig) -> dict:
    """Labels and relationship types with counts, property keys and types, endpoints."""
    driver = connect(cfg)
    out: dict = {"uri": cfg.uri, "database": cfg.database, "labels": {}, "relationships": {}}
    try:
        with translate(cfg), driver.session(database=cfg.database) as s:
            for rec in s.run("CALL db.labels() YIELD label RETURN label ORDER BY label"):
                lab = rec["label"]
                n = s.run(f"MATCH (n:{q(lab)}) RETURN count(n) AS c").single()["c"]
                out["labels"][lab] = {"count": n, "properties": {}}
            for rec in s.run("CALL db.schema.nodeTypeProperties()"):
                for lab in rec["nodeLabels"]:
                    if lab in out["labels"] and rec["propertyName"]:
                        out["labels"][lab]["properties"][rec["propertyName"]] = rec["propertyTypes"]
            types = s.run("CALL db.relationshipTypes() YIELD relationshipType AS t RETURN t")
            for rec in list(types):
                t = rec["t"]
                n = s.run(f"MATCH ()-[r:{q(t)}]->() RETURN count(r) AS c").single()["c"]
                ends = s.run(
                    f"MATCH (a)-[r:{q(t)}]->(b) WITH a, b LIMIT 1000 "
                    "RETURN DISTINCT labels(a) AS src, labels(b) AS dst"
                ).data()
                out["relationships"][t] = {"count": n, "properties": {}, "endpoints": ends}
            for rec in s.run("CALL db.schema.relTypeProperties()"):
                t = rec["relType"].strip(":`")
                if t in out["relationships"] and rec["propertyName"]:
                    out["relationships"][t]["properties"][rec["propertyName"]] = rec[
                        "propertyTypes"
                    ]
    finally:
        driver.close()
    return out


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
