"""Variants of a real overlay: a temporary kustomization with JSON patches over it.

The naive run and the tests use these, so no copy of the manifests exists anywhere: change
base/ and every variant changes with it.
"""

import math
from pathlib import Path

import yaml

from tools.kustomize import find, render, write_wrapper
from tools.repo import ROOT
from tools.validate.invariants.common import SHUTDOWN_MARGIN_SECONDS
from tools.validate.workload import env_seconds

CONTAINER = "/spec/template/spec/containers/0"


def write(
    overlay: str | Path,
    ops: list[dict],
    directory: str | Path,
    components: list[str] = (),
    rollout_ops: list[dict] = (),
    kind_ops: dict[str, list[dict]] | None = None,
) -> Path:
    """Write `directory`/kustomization.yaml: `overlay` with the JSON6902 `ops` on its Deployment,
    the named components of components/ switched on (as the one line in an overlay does),
    `rollout_ops` on the Rollout they bring and `kind_ops` on any other kind."""
    kinds = {"Deployment": ops, "Rollout": rollout_ops, **(kind_ops or {})}
    patches = [
        {"target": {"kind": kind}, "patch": yaml.safe_dump(list(patch))}
        for kind, patch in kinds.items()
        if patch
    ]
    names = [ROOT / "components" / name for name in components]
    return write_wrapper(directory, overlay, names, patches)


def deployment(overlay: str | Path) -> dict:
    return find(render(overlay), "Deployment")[0]


def put(path: str, value: object) -> dict:
    """JSON patch `add`: creates the member or replaces it."""
    return {"op": "add", "path": path, "value": value}


def env(rendered: dict, values: dict[str, str]) -> list[dict]:
    names = [
        var["name"] for var in rendered["spec"]["template"]["spec"]["containers"][0].get("env", [])
    ]
    ops = []
    for name, value in values.items():
        if name in names:
            ops.append(put(f"{CONTAINER}/env/{names.index(name)}/value", value))
        else:
            ops.append(put(f"{CONTAINER}/env/-", {"name": name, "value": value}))
    return ops


def without_pre_stop(rendered: dict) -> list[dict]:
    lifecycle = rendered["spec"]["template"]["spec"]["containers"][0].get("lifecycle", {})
    return (
        [{"op": "remove", "path": f"{CONTAINER}/lifecycle/preStop"}]
        if "preStop" in lifecycle
        else []
    )


def pre_stop_sleep(seconds: int) -> list[dict]:
    return [put(f"{CONTAINER}/lifecycle", {"preStop": {"sleep": {"seconds": seconds}}})]


def fixed_pre_stop(rendered: dict, seconds: int) -> list[dict]:
    """A preStop sleep of `seconds` instead of the hook, and the grace period the contract then
    needs (`zdt validate`'s rule): the timings before the preStop hook waited for traffic to
    leave (app/quiescence.py), 5 s in the base and 30 s behind an ALB."""
    container = rendered["spec"]["template"]["spec"]["containers"][0]
    drain, graceful = (
        env_seconds(container, name) for name in ("DRAIN_SECONDS", "GRACEFUL_TIMEOUT")
    )
    grace = seconds + drain + graceful + SHUTDOWN_MARGIN_SECONDS
    return pre_stop_sleep(seconds) + [
        put("/spec/template/spec/terminationGracePeriodSeconds", math.ceil(grace))
    ]


def strategy(max_surge: int | str, max_unavailable: int | str) -> list[dict]:
    return [
        put(
            "/spec/strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
            },
        )
    ]


def naive(rendered: dict) -> list[dict]:
    """The textbook recipe's manifests: no preStop hook; pods go before new ones are ready."""
    rolling = rendered["spec"].get("strategy", {}).get("rollingUpdate", {})
    return without_pre_stop(rendered) + strategy(rolling.get("maxSurge", "25%"), 1)


HPA = "HorizontalPodAutoscaler"  # the kind of `write`'s kind_ops the two below patch


def hpa_scale_down(window: int, percent: int = 100, period: int = 15) -> list[dict]:
    """The HPA's scaleDown rules replaced: a stabilization window of `window` seconds and one
    policy of `percent` % per `period` seconds (upstream's default scale-down policy is 100 % per
    15 s, pkg/apis/autoscaling/v2/defaults.go)."""
    rules = {
        "stabilizationWindowSeconds": window,
        "policies": [{"type": "Percent", "value": percent, "periodSeconds": period}],
    }
    return [put("/spec/behavior/scaleDown", rules)]


def hpa_min(replicas: int) -> list[dict]:
    """The HPA's minReplicas, for a variant that runs fewer pods than the shipped HPA allows."""
    return [put("/spec/minReplicas", replicas)]


def memory_hog(megabytes: int) -> list[dict]:
    """A release that outgrows its memory limit at start: the container allocates `megabytes`
    MiB before it starts the server (a container runtime enforces the limit)."""
    code = (
        f"x = bytearray({megabytes} * 2**20)\n"
        "import runpy; runpy.run_module('app', run_name='__main__')"
    )
    return [put(f"{CONTAINER}/command", ["python", "-c", code])]


def broken_release(fail_fraction: float = 1.0) -> list[dict]:
    """A release that is ready and healthy but answers /status with 500: all of its requests,
    or the given fraction (tools/fixtures/broken; process runtime)."""
    return [
        put(f"{CONTAINER}/command", ["python", "-m", "tools.fixtures.broken"]),
        put(f"{CONTAINER}/env/-", {"name": "FAIL_FRACTION", "value": f"{fail_fraction:g}"}),
    ]


def adoption(
    overlay: str | Path,
    component: str,
    scale_down: str,
    directory: str | Path,
    ops: list[dict] = (),
    rollout_ops: list[dict] = (),
    kind_ops: dict[str, list[dict]] | None = None,
) -> Path:
    """The step from a plain Deployment to Argo Rollouts: `overlay` with the Rollout
    `component` switched on, its workloadRef scaling the running Deployment down as
    `scale_down` says (never, onsuccess or progressively)."""
    scale = put("/spec/workloadRef/scaleDown", scale_down)
    return write(overlay, list(ops), directory, [component], [*rollout_ops, scale], kind_ops)
