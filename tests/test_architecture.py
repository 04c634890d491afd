"""Imports follow the pipeline: source -> graph -> train -> recommend -> sink, with the
entry points on top, and Ray only in ``graphrec/distributed/``.

Every ``import`` in the package (lazy ones inside functions too) is read with ``ast``; a
module may import its own stage and the stages before it, never one after it. The few
back-edges the code still has are listed in ``KNOWN`` with where they should go; the
list only shrinks (a fixed one must be removed from it, a new one fails).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "graphrec"

# stage of each top-level module or subpackage of graphrec; higher may import lower
STAGES = {
    "errors": 0, "redact": 0, "config": 0, "staging": 0, "outputs": 0,
    "connectors": 1, "loaders": 1,
    "graph": 2, "ranking": 2, "pipeline": 2,
    "samplers": 3, "models": 3, "train": 3,
    "recommend": 4,
    "sinks": 5,
    "plots": 6, "environment": 6, "synth": 6, "job": 6,
    "inspect_neo4j": 6, "inspect_arango": 6, "inspect_features": 6, "inspect_gremlin": 6,
    "transform": 6, "serve": 6,
    "compare": 6, "benchmark": 6, "distributed": 6, "cli": 7, "__main__": 7, "__init__": 7,
}  # fmt: skip

KNOWN: dict[tuple[str, str], str] = {
    # (importer, imported): where it should go; empty since issue 15
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(rel.parts), path


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                name = ".".join(["graphrec", *base, *(node.module or "").split(".")]).rstrip(".")
            else:
                name = node.module or ""
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return out


def _stage(module: str) -> int | None:
    return STAGES.get(module.split(".")[0])


def _violations() -> dict[tuple[str, str], str]:
    found = {}
    names = {m for m, _ in _modules()}
    for module, path in _modules():
        mine = _stage(module)
        for imp in _imports(path, module):
            if not imp.startswith("graphrec."):
                continue
            target = imp.removeprefix("graphrec.")
            # the longest name that is a module of the package
            parts = target.split(".")
            while parts and not {".".join(parts), ".".join(parts) + ".__init__"} & names:
                parts.pop()
            target = ".".join(parts) or target
            theirs = _stage(target)
            if mine is not None and theirs is not None and theirs > mine:
                found[(module.removesuffix(".__init__"), target)] = f"stage {mine} imports {theirs}"
    return found


def test_every_module_has_a_stage():
    missing = sorted({m.split(".")[0] for m, _ in _modules()} - set(STAGES))
    assert not missing, f"give these a stage in STAGES: {missing}"


def test_imports_point_down_the_pipeline():
    found = _violations()
    new = {k: v for k, v in found.items() if k not in KNOWN}
    assert not new, f"imports against the pipeline's direction: {new}"
    fixed = [k for k in KNOWN if k not in found]
    assert not fixed, f"fixed: remove from KNOWN {fixed}"


def test_ray_only_in_distributed():
    for module, path in _modules():
        if module.startswith("distributed"):
            continue
        rays = {i for i in _imports(path, module) if i == "ray" or i.startswith("ray.")}
        assert not rays, f"graphrec.{module} imports {sorted(rays)}: Ray lives in distributed/"
