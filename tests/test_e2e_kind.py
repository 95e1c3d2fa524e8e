"""The e2e cluster's own manifests (tools/e2e/kind/, tools/e2e/metrics-server/), rendered here.

kind runs the control plane and the app on one node with the runner's CPUs. On a 2-vCPU runner
the production requests do not leave room for the surge pod, so the e2e overlays lower the CPU
request, and nothing else. metrics-server makes the HPA real; its one patch is rendered against
a stand-in of the upstream manifest, and against the release manifest vendored beside it
(tools/e2e/metrics-server/components.yaml, checked against the release asset's sha256 in
tests/test_e2e_pinned.py).
"""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import gitrepo
from tools.kustomize import RenderError, find, render
from tools.repo import ROOT
from tools.rollingupdate import parse_int_or_percent, resolve

E2E = ROOT / "tools" / "e2e"
VERSIONS = ("v1", "v2")

# What kind's single node has requested before the app arrives, in millicores: the kubeadm
# static pods (kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd
# 100m), CoreDNS (2 replicas x 100m), kindnet (100m), and metrics-server (100m, its release
# manifest). kube-proxy and local-path-provisioner request no CPU.
KIND_SYSTEM_MILLICORES = 250 + 200 + 100 + 100 + 2 * 100 + 100 + 100
# The smallest runner the e2e job must fit: 2 vCPUs (kind's node allocates all of them).
RUNNER_MILLICORES = 2000


def millicores(quantity: str | int) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def app(resources: list[dict]) -> tuple[dict, dict, dict]:
    """The Deployment, its container and the HPA."""
    (deployment,) = find(resources, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (hpa,) = find(resources, "HorizontalPodAutoscaler")
    return deployment, container, hpa


def loadgen_millicores() -> int:
    job = yaml.safe_load((ROOT / "tools" / "e2e-job" / "job.yaml").read_text())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return millicores(container["resources"]["requests"]["cpu"])


def worst_case_millicores(resources: list[dict]) -> int:
    """CPU requested at the widest point of a rollout: the HPA at its maximum, plus the surge."""
    deployment, container, hpa = app(resources)
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    replicas = hpa["spec"]["maxReplicas"]
    fenceposts = resolve(
        parse_int_or_percent(strategy["maxSurge"], "maxSurge"),
        parse_int_or_percent(strategy["maxUnavailable"], "maxUnavailable"),
        replicas,
    )
    pods = replicas + fenceposts.max_surge
    return pods * millicores(container["resources"]["requests"]["cpu"]) + loadgen_millicores()


def fits_the_runner(resources: list[dict]) -> bool:
    return KIND_SYSTEM_MILLICORES + worst_case_millicores(resources) <= RUNNER_MILLICORES


@pytest.mark.parametrize("version", VERSIONS)
def test_the_e2e_overlay_is_the_overlay_with_smaller_cpu_requests_only(version):
    production = render(ROOT / "overlays" / version)
    e2e = render(E2E / "kind" / version)
    _, container, hpa = app(e2e)
    _, production_container, production_hpa = app(production)
    assert container["image"] == production_container["image"]

    # Put production's two values back: then nothing differs.
    restored = copy.deepcopy(e2e)
    _, restored_container, restored_hpa = app(restored)
    restored_container["resources"]["requests"]["cpu"] = production_container["resources"][
        "requests"
    ]["cpu"]
    restored_hpa["spec"]["metrics"] = production_hpa["spec"]["metrics"]
    assert restored == production
    assert e2e != production


@pytest.mark.parametrize("version", VERSIONS)
def test_the_hpa_scales_at_the_same_cpu_as_in_production(version):
    def target_millicores(resources):
        _, container, hpa = app(resources)
        (metric,) = hpa["spec"]["metrics"]
        utilization = metric["resource"]["target"]["averageUtilization"]
        return millicores(container["resources"]["requests"]["cpu"]) * utilization / 100

    production = render(ROOT / "overlays" / version)
    e2e = render(E2E / "kind" / version)
    assert target_millicores(e2e) == target_millicores(production)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_e2e_rollout_fits_a_2_vcpu_runner_and_production_requests_do_not(version):
    assert fits_the_runner(render(E2E / "kind" / version))
    # The counterpart: the same arithmetic rejects production's requests on that runner.
    assert not fits_the_runner(render(ROOT / "overlays" / version))


def test_the_e2e_workflow_deploys_the_e2e_overlays():
    workflow = (ROOT / ".github" / "workflows" / "e2e.yml").read_text()
    assert "tools/e2e/run.sh tools/e2e/kind/v1 tools/e2e/kind/v2" in workflow


METRICS_SERVER = E2E / "metrics-server" / "kustomization.yaml"
# Enough of the upstream manifest for the patch: a Deployment whose first container has args.
STAND_IN = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  selector: {matchLabels: {k8s-app: metrics-server}}
  template:
    metadata: {labels: {k8s-app: metrics-server}}
    spec:
      containers:
      - name: metrics-server
        image: registry.k8s.io/metrics-server/metrics-server:v0.0.0
        args: [--cert-dir=/tmp, --secure-port=10250]
"""


def test_metrics_server_is_a_pinned_release():
    # The release manifest vendored beside the kustomization, with the release's image tag.
    assert yaml.safe_load(METRICS_SERVER.read_text())["resources"] == ["components.yaml"]
    (deployment,) = find(render(METRICS_SERVER.parent), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert re.fullmatch(
        r"registry\.k8s\.io/metrics-server/metrics-server:v\d+\.\d+\.\d+", container["image"]
    )
    assert container["args"][-1] == "--kubelet-insecure-tls"


def test_metrics_server_skips_kubelet_tls_verification_on_kind(tmp_path):
    kustomization = yaml.safe_load(METRICS_SERVER.read_text())
    kustomization["resources"] = ["components.yaml"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (tmp_path / "components.yaml").write_text(STAND_IN)

    (deployment,) = find(render(tmp_path), "Deployment")

    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--cert-dir=/tmp", "--secure-port=10250", "--kubelet-insecure-tls"]


def test_the_patch_needs_upstreams_args_list(tmp_path):
    # The counterpart: were upstream to drop the container's args, the patch would not apply,
    # and the test above (and `kubectl apply -k` on GitHub) would fail instead of silently
    # leaving TLS verification on.
    kustomization = yaml.safe_load(METRICS_SERVER.read_text())
    kustomization["resources"] = ["components.yaml"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (tmp_path / "components.yaml").write_text(
        STAND_IN.replace("        args: [--cert-dir=/tmp, --secure-port=10250]\n", "")
    )

    with pytest.raises(RenderError):
        render(tmp_path)


# tools/e2e/images.sh, the images of every kind job, against a stand-in docker.

DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case $1 in
inspect) for image; do :; done
         version=${image##*-}
         echo "$image@sha256:$(printf '%064d' "${version#v}")" ;;
esac
"""


def docker_env(tmp_path: Path, script: str, zdt: Path) -> dict[str, str]:
    """The environment that puts `script` in docker's place, each call logged to docker.log."""
    docker = tmp_path / "docker"
    docker.write_text(script)
    docker.chmod(0o755)
    return {
        **os.environ,
        "DOCKER": str(docker),
        "DOCKER_LOG": str(tmp_path / "docker.log"),
        "ZDT": str(zdt),
    }


def test_images_are_built_pushed_and_pinned_by_digest(tmp_path):
    work = gitrepo.init(tmp_path / "work")
    for part in ("base", "overlays", "tools/e2e"):
        shutil.copytree(ROOT / part, work / part)
    gitrepo.commit_all(work, "the checkout")
    env = docker_env(tmp_path, DOCKER, Path(sys.executable).with_name("zdt"))

    result = subprocess.run(
        ["bash", str(E2E / "images.sh")], cwd=work, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    registry = "kind-registry:5000/zero-downtime-app"
    for version, digit in (("v1", "1"), ("v2", "2")):
        (deployment,) = find(render(work / "overlays" / version), "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{registry}:e2e-{version}@sha256:{digit.zfill(64)}"
    (runtime,) = yaml.safe_load((work / "tools" / "e2e" / "kustomization.yaml").read_text())[
        "images"
    ]
    assert runtime["digest"] == "sha256:" + "1".zfill(64)  # v1's image
    calls = (tmp_path / "docker.log").read_text().splitlines()
    assert calls[0] == f"build --build-arg APP_VERSION=v1 --tag {registry}:e2e-v1 ."
    assert calls[1] == f"push {registry}:e2e-v1"
    assert "+  newTag: e2e-v2" in result.stdout  # the diff, in the job's log
