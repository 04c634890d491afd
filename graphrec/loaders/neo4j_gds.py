"""Structural embeddings computed inside Neo4j by the Graph Data Science library (GDS).

As the DVD-rental tutorial does: project the chosen labels and relationship types into
GDS's in-memory catalogue (every relationship undirected), stream ``gds.node2vec`` or
``gds.fastRP`` embeddings, and drop the projection again (also after an error or an
interrupt). Each vector is matched to graphrec's node by its key property; the result is
``{node type: {key: vector}}``.

GDS reads the database as it is: every edge of the projected types, including target
edges a graphrec split would hold out. The graph stage therefore refuses a projection that
contains the target edge type in evaluate mode (:mod:`graphrec.graph.structural`).

Needs GDS on the server (``CALL gds.version()``); without it the call fails in one line
that says so. The embedded test server gets it from ``neo4j-embedded/gds/pom.xml``.
"""

from __future__ import annotations

import secrets

from graphrec.config import ExtractConfig
from graphrec.connectors.neo4j import close_quietly, connect, open_session, server, translate
from graphrec.errors import ConfigError

METHODS = {"node2vec": "gds.node2vec.stream", "fastrp": "gds.fastRP.stream"}


def gds_version(session) -> str | None:
    """GDS's version on the server, or None when it is not installed."""
    import neo4j.exceptions as ne

    try:
        return session.run("RETURN gds.version() AS v").single()["v"]
    except ne.ClientError as exc:  # an unknown function: no GDS
        if "gds.version" in str(exc):
            return None
        raise


def gds_embeddings(
    ecfg: ExtractConfig,
    method: str,
    node_types: list[str],
    edge_types: list[str],
    settings: dict,
) -> dict[str, dict]:
    """``{node type: {key: vector}}`` of ``method`` (``node2vec`` or ``fastrp``) with GDS
    ``settings`` (GDS's own names), on the projection of ``node_types`` (graphrec's names,
    mapped to their labels) and ``edge_types`` (edge names, mapped to relationship types)."""
    ncfg = ecfg.neo4j
    labels = {t: ecfg.nodes[t].label or t for t in node_types}
    keys = {labels[t]: ecfg.nodes[t].id for t in node_types}
    types = [ecfg.edges[e].type or e for e in edge_types]
    name = f"graphrec-{secrets.token_hex(6)}"
    where = f"neo4j at {server(ncfg)}"
    driver = connect(ncfg)
    try:
        with open_session(driver, ncfg) as session:
            with translate(ncfg, "checking for Graph Data Science"):
                version = gds_version(session)
            if version is None:
                raise ConfigError(
                    f"{where} has no Graph Data Science library (gds.version() is unknown): "
                    "install the GDS plugin, or compute the embeddings with where: graphrec"
                )
            rels = {t: {"type": t, "orientation": "UNDIRECTED"} for t in types}
            with translate(ncfg, f"projecting {sorted(labels.values())} with GDS {version}"):
                session.run(
                    "CALL gds.graph.project($name, $labels, $rels) YIELD nodeCount",
                    name=name,
                    labels=list(labels.values()),
                    rels=rels,
                ).consume()
            try:
                with translate(ncfg, f"streaming {METHODS[method]}"):
                    rows = session.run(
                        f"CALL {METHODS[method]}($name, $settings) YIELD nodeId, embedding "
                        "WITH gds.util.asNode(nodeId) AS n, embedding "
                        "WITH n, embedding, [l IN labels(n) WHERE l IN $labels][0] AS label "
                        "RETURN label, n[$keys[label]] AS key, embedding",
                        name=name,
                        settings=settings,
                        labels=list(labels.values()),
                        keys=keys,
                    ).values()
            finally:
                with translate(ncfg, "dropping the GDS projection"):
                    session.run(
                        "CALL gds.graph.drop($name, false) YIELD graphName", name=name
                    ).consume()
    finally:
        close_quietly(driver)
    by_label = {lab: t for t, lab in labels.items()}
    out: dict[str, dict] = {t: {} for t in node_types}
    for label, key, vec in rows:
        if key is not None:
            out[by_label[label]][key] = vec
    return out
