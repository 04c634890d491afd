"""k8s/ manifests against the KubeRay CRD schemas (k8s/crds/, copied from KubeRay with its licence).

Kubernetes prunes (or, with strict field validation, rejects) fields a CRD does not declare;
plain JSON Schema would accept them, so every object schema that lists properties and does
not preserve unknown fields is closed here (``additionalProperties: false``), as
``kubectl apply --validate=strict`` does.
"""

from __future__ import annotations

import copy
import functools
import os
import shlex
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the [test] extra")

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "k8s" / "crds"
MANIFESTS = {"rayjob.yaml": "ray.io_rayjobs.yaml", "raycluster.yaml": "ray.io_rayclusters.yaml"}


def crd(name: str) -> dict:
    path = CRDS / name
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI validates k8s/ against the KubeRay CRDs")
        pytest.skip(f"KubeRay CRD schema {path} is not here (k8s/crds/)")
    return _load(path)


@functools.lru_cache
def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def strict(schema: dict) -> dict:
    """A copy of ``schema`` where objects reject undeclared fields."""
    out = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                close(v)
        elif isinstance(node, list):
            for v in node:
                close(v)

    close(out)
    return out


@functools.lru_cache
def _strict_schema(name: str, version: str) -> dict:
    doc = crd(name)
    served = {v["name"]: v for v in doc["spec"]["versions"] if v["served"]}
    schema = strict(served[version]["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server itself, not by the CRD schema
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def validator(manifest: dict, crd_name: str):
    crd_doc = crd(crd_name)
    group, version = manifest["apiVersion"].split("/")
    assert group == crd_doc["spec"]["group"]
    assert manifest["kind"] == crd_doc["spec"]["names"]["kind"]
    served = {v["name"]: v for v in crd_doc["spec"]["versions"] if v["served"]}
    assert version in served, f"{manifest['apiVersion']} is not served by the CRD"
    return jsonschema.Draft7Validator(_strict_schema(crd_name, version))


def errors(manifest: dict, crd_name: str) -> list[str]:
    v = validator(manifest, crd_name)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(manifest)]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_validates_against_the_crd(name):
    manifest = yaml.safe_load((ROOT / "k8s" / name).read_text())
    assert errors(manifest, MANIFESTS[name]) == []


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda m: m["spec"].__setitem__("shutdownAfterJobFinishes", "yes"), "is not of type"),
        (lambda m: m["spec"].__setitem__("shutdownAfterJobsFinish", True), "Additional prop"),
        (
            lambda m: m["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"),
            "'groupName' is a required property",
        ),
        (
            lambda m: m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"][
                "containers"
            ][0].__setitem__("imagee", "x"),
            "Additional prop",
        ),
    ],
)
def test_the_schema_check_rejects_broken_manifests(mutate, expect):
    manifest = yaml.safe_load((ROOT / "k8s/rayjob.yaml").read_text())
    mutate(manifest)
    found = errors(manifest, MANIFESTS["rayjob.yaml"])
    assert any(expect in e for e in found), found


def test_rayjob_runs_a_valid_graphrec_command_that_fits_its_workers(monkeypatch):
    import argparse

    from graphrec import cli

    job = yaml.safe_load((ROOT / "k8s/rayjob.yaml").read_text())
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    words = shlex.split(spec["entrypoint"])
    argv = words[words.index("graphrec") + 1 :]
    parsed = {}

    def capture(args: argparse.Namespace) -> int:  # parse as the CLI does, do not run
        parsed["cfg"] = cli._job_config(args)
        return 0

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(cli, "_run", capture)
    assert cli.main(argv) == 0
    cfg = parsed["cfg"]
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert len(workers) == 1
    group = workers[0]
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert cfg.distributed.use_gpu and int(limits["nvidia.com/gpu"]) == 1
    assert cfg.distributed.workers == group["minReplicas"] == group["replicas"]
    assert cfg.distributed.cpus_per_worker <= int(limits["cpu"])
    assert cfg.train.checkpoint_path.startswith("s3://")  # reachable from every pod
    head_env = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in head_env if "valueFrom" in e}
    assert cfg.extract.neo4j.password_env in secret


def test_manifests_use_the_image_the_dockerfile_builds():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in MANIFESTS:
        text = (ROOT / "k8s" / name).read_text()
        images = {
            line.split("image:")[1].strip()
            for line in text.splitlines()
            if line.strip().startswith("image:")
        }
        assert len(images) == 1
        assert images.pop() in dockerfile
        manifest = yaml.safe_load(text)
        spec = manifest["spec"].get("rayClusterSpec", manifest["spec"])
        assert spec["rayVersion"] in (ROOT / "pyproject.toml").read_text()


def test_serve_deployment_runs_a_valid_serve_command_behind_its_probes(monkeypatch):
    """k8s/serve.yaml (a Deployment + Service; no CRD to validate against): the command
    parses as ``graphrec serve`` does, the probes hit the endpoints the server has, on the
    port it listens on, and the Service routes to that port."""
    import argparse

    from graphrec import cli
    from graphrec.serve.app import create_app

    deployment, service = yaml.safe_load_all((ROOT / "k8s/serve.yaml").read_text())
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    parsed = {}

    def capture(args: argparse.Namespace) -> int:
        parsed["args"] = args
        return 0

    monkeypatch.setattr(cli, "_serve", capture)
    assert cli.main(container["command"][1:]) == 0
    args = parsed["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.host == "0.0.0.0" and ports["http"] == args.port
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    routes = {r.path for r in create_app(args.run).routes}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in routes and get["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    env = {e["name"] for e in container["env"]}
    assert "NEO4J_PASSWORD" in env  # the run's source is read again at load
    assert container["image"] in (ROOT / "Dockerfile").read_text()
    assert pod["metadata"]["annotations"]["prometheus.io/path"] in routes
