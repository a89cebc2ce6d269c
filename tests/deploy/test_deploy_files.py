"""The deployment files: they pass their linters (scripts/lint-deploy), and the Kubernetes overlays route each path
to the pool that owns it, keep /metrics in the cluster, and run every pool the same careful way."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the environment running the tests holds the Python linters
LINTERS = ("hadolint", "zizmor", "check-jsonschema", "kubernetes-validate")
POOLS = {
    "catalog": ["/", "/api/v1/products", "/api/v1/categories", "/static", "/media"],
    "checkout": ["/api/v1/carts", "/api/v1/checkout", "/api/v1/orders", "/api/v1/shipping-methods",
                 "/api/v1/payments"],
    "account": ["/api/v1/auth", "/api/v1/me"],
    "admin": ["/admin"],
}


def _require(*tools: str) -> None:
    """Skip, saying what is missing — except in CI (SHOP_TEST_DATABASES set), where a missing tool fails."""
    missing = [t for t in tools if not ((BIN / t).exists() or shutil.which(t))]
    if not missing:
        return
    message = f"missing {', '.join(missing)} (dev extras: pip install -e '.[dev]'; kubectl 1.27+)"
    if os.environ.get("SHOP_TEST_DATABASES"):
        pytest.fail(f"CI must check the deployment files: {message}")
    pytest.skip(message)


def test_the_deployment_files_pass_their_linters() -> None:
    _require(*LINTERS, "kubectl")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "lint-deploy")], env={**os.environ, "BIN": str(BIN)},
                            cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deployment files: ok" in result.stdout


def _render(overlay: str) -> list[dict[str, Any]]:
    _require("kubectl")
    return _rendered(overlay)


@functools.cache
def _rendered(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _route(ingress: dict[str, Any], path: str) -> str:
    """The Service a request path reaches: the longest matching Prefix path wins, whole segments only."""
    best, service = -1, ""
    for rule in ingress["spec"]["rules"]:
        for route in rule["http"]["paths"]:
            prefix = route["path"].rstrip("/")
            if route["pathType"] == "Prefix" and (path == prefix or path.startswith(prefix + "/")) \
                    and len(prefix) > best:
                best, service = len(prefix), route["backend"]["service"]["name"]
    return service


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_requests_reach_the_pool_that_owns_their_path(overlay: str) -> None:
    ingress = next(d for d in _render(overlay) if d["kind"] == "Ingress")
    for pool, prefixes in POOLS.items():
        for prefix in prefixes:
            assert _route(ingress, prefix) == f"shop-{pool}", prefix
    assert _route(ingress, "/api/v1/orders/A-1001/refund") == "shop-checkout"
    assert _route(ingress, "/api/v1/me") == "shop-account"
    assert _route(ingress, "/api/v1/meta") == "shop-catalog", "a prefix matches whole segments"
    assert _route(ingress, "/app/assets/x.js") == "shop-catalog"
    assert _route(ingress, "/admin/orders") == "shop-admin"
    assert _route(ingress, "/metrics") not in {f"shop-{pool}" for pool in POOLS}, "/metrics must stay inside"


def test_the_ingress_routes_as_the_pools_file_does() -> None:
    """examples/pools.toml (`shop serve --pools`) and the Ingress split the routes the same way."""
    pools_file = ROOT / "examples" / "pools.toml"
    assert pools_file.exists(), "examples/pools.toml is gone: the README's pools example and this check need it"
    pools = tomllib.loads(pools_file.read_text())["pools"]
    ingress = next(d for d in _render("prod") if d["kind"] == "Ingress")
    for name, pool in pools.items():
        for prefix in pool["prefixes"]:
            if prefix != "/metrics":  # on one machine the admin pool answers it; a cluster keeps it inside
                assert _route(ingress, prefix) == f"shop-{name}", f"{prefix} of [pools.{name}]"
    listed = {prefix for pool in pools.values() for prefix in pool["prefixes"]}
    routed = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
              if p["backend"]["service"]["name"] != "shop-not-exposed"}
    assert routed - listed <= {"/static"}, "nginx serves /static itself; every other Ingress path is in the file"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pool_is_a_deployment_with_its_service_autoscaler_and_disruption_budget(overlay: str) -> None:
    docs = _render(overlay)
    named = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    for pool in POOLS:
        name = f"shop-{pool}"
        deployment = named[("Deployment", name)]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert {"name": "SHOP_POOL", "value": pool} in container["env"]
        assert container["args"] == ["serve", "--no-worker"], "the background worker is its own Deployment"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert set(container["resources"]) == {"requests", "limits"}
        assert named[("Service", name)]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        hpa = named[("HorizontalPodAutoscaler", name)]
        assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == name
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert named[("PodDisruptionBudget", name)]["spec"]["selector"]["matchLabels"] == \
            deployment["spec"]["selector"]["matchLabels"]
    worker = named[("Deployment", "shop-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]
    assert named[("Job", "shop-migrate")]["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_shops_pods_run_unprivileged_on_a_read_only_root(overlay: str) -> None:
    workloads = [d for d in _render(overlay) if d["kind"] in {"Deployment", "Job"}
                 and d["metadata"]["name"].startswith("shop-")]
    assert len(workloads) == 6
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/app/var", "/tmp"} <= mounts, workload["metadata"]["name"]


def test_prod_pins_the_image_tag_and_keeps_secrets_out_of_the_repository() -> None:
    docs = _render("prod")
    images = {c["image"] for d in docs if d["kind"] in {"Deployment", "Job"}
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1
    tag = images.pop().rpartition(":")[2]
    assert tag[0].isdigit() and tag != "latest", tag
    assert not [d for d in docs if d["kind"] == "Secret"], "production secrets are created outside the repository"
