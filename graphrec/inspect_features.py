"""What ``kind: auto`` would choose for every declared node property of a configured
source (files, Neo4j or ArangoDB), for ``graphrec inspect --config``: the node tables are
read (not the edges) and each property is judged as the graph stage would judge it."""

from __future__ import annotations

import pyarrow as pa

from graphrec.config import ExtractConfig, FeatureSpec
from graphrec.graph.encoders import choose
from graphrec.loaders import make_source


def feature_choices(cfg: ExtractConfig, specs: dict[str, list[FeatureSpec]] | None = None) -> dict:
    """``{node type: {property: {"kind", "why"}}}``; ``specs`` (``build.features``) gives
    the settings auto uses (separator, word rule); a property without one gets defaults."""
    given = {t: {s.property: s for s in v} for t, v in (specs or {}).items()}
    source = make_source(cfg)
    out: dict = {}
    try:
        for ntype, node in cfg.nodes.items():
            props = [p for p in node.properties if p != node.id]
            parts = source.partitions("node", ntype) if props else []
            if not parts:
                continue
            table = pa.Table.from_batches([b for p in parts for b in source.read(p)])
            out[ntype] = {}
            for prop in props:
                spec = given.get(ntype, {}).get(prop) or FeatureSpec(prop)
                kind, why = choose(table.column(prop), spec)
                out[ntype][prop] = {"kind": kind or "left out", "why": why}
    finally:
        source.close()
    return out


def format_choices(choices: dict) -> str:
    lines = ["features (kind: auto would choose):"]
    for ntype, props in choices.items():
        for prop, c in props.items():
            lines.append(f"  {ntype}.{prop}: {c['kind']} ({c['why']})")
    if len(lines) == 1:
        lines.append("  nothing: no node type declares a property (the model uses ids alone)")
    return "\n".join(lines)
