"""The exposure components (components/gateway-api, components/aws-alb): what tools/exposure.py
reads from a render, and the rules `zdt validate` holds the pods to with an exposure switched on.
Every rule is shown to fail on a copy of the tree broken in one place, with its exact message.

The copies hold only the components a case needs, so each case renders few variants. An ALB, a
gateway proxy and the AWS Load Balancer Controller actually doing this are proven elsewhere
(docs/exposure.md says where).
"""

import copy
import math
import shutil
from pathlib import Path

import pytest
import yaml

from tests.test_components import set_field
from tests.test_rollout_manifests import all_problems
from tools import durations
from tools.exposure import Exposure, ExposureError, HealthCheck, read_exposure
from tools.kustomize import render, render_with_components
from tools.repo import ROOT
from tools.validate import crd
from tools.validate.invariants import check_overlays
from tools.validate.invariants.common import REFUSAL_REASONS
from tools.validate.overlays import AWS_ALB, BLUE_GREEN, load_overlays
from tools.validate.summary import describe

GATEWAY = "components/gateway-api"
CANARY = "components/rollout-canary"
ANALYSIS = "components/rollout-analysis"
ALB_RENDER = f"{GATEWAY}+{AWS_ALB}"
DEPLOYMENT = "Deployment/zero-downtime-app"
CONTAINER = "spec.template.spec.containers[app]"
ROUTE = "HTTPRoute/zero-downtime-app"
TGC = "TargetGroupConfiguration/zero-downtime-app"
ROLLOUT = "Rollout/zero-downtime-app"
APPLICATION = "Application/zero-downtime-app"
DOC = ROOT / "docs" / "exposure.md"
BOTH = ("overlays/v1", "overlays/v2")
# Argo Rollouts v1.9.1, docs/features/bluegreen.md, word for word.
ROLLOUTS_QUOTE = (
    "ALB Ingress with Rollouts blue-green strategy is not supported without a chance of downtime"
)


def renders(label: str) -> list[str]:
    return [f"{overlay}+{label}" for overlay in BOTH]


@pytest.fixture(scope="module")
def gateway_render() -> list[dict]:
    return render_with_components(ROOT / "overlays" / "v2", [ROOT / GATEWAY])


@pytest.fixture(scope="module")
def alb_render() -> list[dict]:
    return render_with_components(ROOT / "overlays" / "v2", [ROOT / GATEWAY, ROOT / AWS_ALB])


def test_a_render_without_an_exposure_has_none():
    assert read_exposure(render(ROOT / "overlays" / "v2")) is None


def test_the_gateway_exposure(gateway_render):
    assert read_exposure(gateway_render) == Exposure(
        kind="gateway",
        route="zero-downtime-app",
        service="zero-downtime-app",
        service_port=80,
        path_prefix="/",
        request_timeout=30.0,
        upstream_idle_timeout=60.0,
        propagation_allowance=5.0,
        retries=False,
        target_type=None,
        health_check=None,
        deregistration_delay=None,
    )


def test_the_alb_exposure(alb_render):
    assert read_exposure(alb_render) == Exposure(
        kind="aws-alb",
        route="zero-downtime-app",
        service="zero-downtime-app",
        service_port=80,
        path_prefix="/",
        request_timeout=30.0,
        upstream_idle_timeout=60.0,
        propagation_allowance=30.0,
        retries=False,
        target_type="ip",
        health_check=HealthCheck(
            path="/ready",
            port="traffic-port",
            interval=5.0,
            timeout=2.0,
            healthy_threshold=2,
            unhealthy_threshold=2,
        ),
        deregistration_delay=145.0,
    )


def find(resources: list[dict], kind: str) -> dict:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def changed(resources: list[dict], kind: str, change) -> list[dict]:
    """A deep copy of the render with `change` applied to its one resource of `kind`."""
    resources = copy.deepcopy(resources)
    change(find(resources, kind))
    return resources


def annotate(name: str, value):
    def change(route):
        annotations = route["metadata"]["annotations"]
        if value is None:
            del annotations[f"zero-downtime-app/{name}"]
        else:
            annotations[f"zero-downtime-app/{name}"] = value

    return change


def set_in(*path, value):
    return set_field(path, value)


ANNOTATIONS = "metadata.annotations"
GATEWAY_ERRORS = {
    "allowance not a duration": (
        annotate("propagation-allowance", "soon"),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/propagation-allowance]: not a duration like"
        " 30s, 5m or 1h: 'soon'",
    ),
    "allowance missing": (
        annotate("propagation-allowance", None),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/propagation-allowance]: missing: the design's"
        " number",
    ),
    "idle timeout missing": (
        annotate("upstream-idle-timeout", None),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/upstream-idle-timeout]: missing: the design's"
        " number",
    ),
    "retries neither on nor off": (
        annotate("retries", "twice"),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/retries]: is 'twice', must be 'off' or 'on'",
    ),
    "request timeout not a duration": (
        set_in("spec", "rules", 0, "timeouts", "request", value="30"),
        f"{ROUTE}: spec.rules[0].timeouts.request: not a Gateway API duration like 30s, 1m30s or"
        " 500ms: '30'",
    ),
    "two rules": (
        lambda route: route["spec"]["rules"].append(route["spec"]["rules"][0]),
        f"{ROUTE}: spec.rules: expected 1 rule, found 2",
    ),
    "backend not a Service": (
        set_in("spec", "rules", 0, "backendRefs", 0, "kind", value="ServiceImport"),
        f"{ROUTE}: spec.rules[0].backendRefs[0]: is not a Service",
    ),
    "exact path match": (
        set_in("spec", "rules", 0, "matches", 0, "path", "type", value="Exact"),
        f"{ROUTE}: spec.rules[0].matches: expected one PathPrefix match",
    ),
}


@pytest.mark.parametrize("case", GATEWAY_ERRORS, ids=list(GATEWAY_ERRORS))
def test_a_malformed_route_raises_an_error_naming_resource_and_field(gateway_render, case):
    change, message = GATEWAY_ERRORS[case]
    with pytest.raises(ExposureError) as raised:
        read_exposure(changed(gateway_render, "HTTPRoute", change))
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


ALB_ERRORS = {
    "idle annotation disagrees with the ALB": (
        "HTTPRoute",
        annotate("upstream-idle-timeout", "50s"),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/upstream-idle-timeout]: is 50 s, but the ALB's"
        " idle_timeout.timeout_seconds is 60 s: they must agree",
    ),
    "idle attribute not a number": (
        "LoadBalancerConfiguration",
        set_in("spec", "loadBalancerAttributes", 0, "value", value="a minute"),
        "LoadBalancerConfiguration/zero-downtime-app:"
        " spec.loadBalancerAttributes[idle_timeout.timeout_seconds]: 'a minute' is not a number",
    ),
    "deregistration delay not a number": (
        "TargetGroupConfiguration",
        set_in("spec", "defaultConfiguration", "targetGroupAttributes", 0, "value", value="1m"),
        f"{TGC}: spec.defaultConfiguration.targetGroupAttributes"
        "[deregistration_delay.timeout_seconds]: '1m' is not a number",
    ),
    "settings per route": (
        "TargetGroupConfiguration",
        set_in("spec", "routeConfigurations", value=[{"routeIdentifier": {"kind": "HTTPRoute"}}]),
        f"{TGC}: spec.routeConfigurations: not read here: put the target group's settings in"
        " spec.defaultConfiguration",
    ),
    "no LoadBalancerConfiguration of that name": (
        "Gateway",
        set_in("spec", "infrastructure", "parametersRef", "name", value="other"),
        "Gateway/zero-downtime-app: spec.infrastructure.parametersRef: no"
        " LoadBalancerConfiguration 'other' in the render",
    ),
}


@pytest.mark.parametrize("case", ALB_ERRORS, ids=list(ALB_ERRORS))
def test_a_malformed_alb_setting_raises_an_error_naming_resource_and_field(alb_render, case):
    kind, change, message = ALB_ERRORS[case]
    with pytest.raises(ExposureError) as raised:
        read_exposure(changed(alb_render, kind, change))
    assert str(raised.value) == message


def test_two_routes_are_refused(gateway_render):
    route = copy.deepcopy(find(gateway_render, "HTTPRoute"))
    route["metadata"]["name"] = "other"
    with pytest.raises(ExposureError, match=r"^HTTPRoute: kind: expected 1 HTTPRoute, found "):
        read_exposure([*gateway_render, route])


def test_what_the_alb_configuration_leaves_out_takes_the_controllers_defaults(alb_render):
    def bare(config):
        config["spec"]["defaultConfiguration"] = {}

    def no_attributes(config):
        config["spec"]["loadBalancerAttributes"] = []

    resources = changed(alb_render, "TargetGroupConfiguration", bare)
    resources = changed(resources, "LoadBalancerConfiguration", no_attributes)
    exposure = read_exposure(
        changed(resources, "HTTPRoute", annotate("upstream-idle-timeout", None))
    )
    # AWS Load Balancer Controller v3.5.0 (model_build_target_group.go) and AWS's own defaults.
    assert exposure.target_type == "instance"
    assert exposure.health_check == HealthCheck("/", "traffic-port", 15.0, 5.0, 3, 3)
    assert exposure.deregistration_delay == 300.0
    assert exposure.upstream_idle_timeout == 60.0


def test_a_zero_request_timeout_switches_it_off(gateway_render):
    resources = changed(
        gateway_render, "HTTPRoute", set_in("spec", "rules", 0, "timeouts", "request", value="0s")
    )
    assert read_exposure(resources).request_timeout == math.inf


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("0s", 0)]
)
def test_gateway_api_durations(text, seconds):
    assert durations.gateway_seconds(text) == seconds


@pytest.mark.parametrize("text", ["30", "1.5s", "s", "1s1s1s1s1s", 30])
def test_what_is_not_a_gateway_api_duration(text):
    with pytest.raises(ValueError, match="not a Gateway API duration"):
        durations.gateway_seconds(text)


# The variants zdt validate renders, as they are.


@pytest.fixture
def variants(rendered_variants) -> dict:
    return rendered_variants


def test_each_exposure_renders_alone_and_under_each_delivery_it_allows(variants):
    kinds = {
        label: read_exposure(overlays[1].resources).kind
        for label, overlays in variants.items()
        if read_exposure(overlays[1].resources)
    }
    assert kinds == {
        GATEWAY: "gateway",
        ALB_RENDER: "aws-alb",
        f"{BLUE_GREEN}+{GATEWAY}": "gateway",
        f"{CANARY}+{GATEWAY}": "gateway",
        f"{CANARY}+{ALB_RENDER}": "aws-alb",
    }
    for label in kinds:
        for overlay in variants[label]:
            assert [str(p) for p in check_overlays([overlay])] == []
            resources = [r for r in overlay.resources if crd.crd_of(r)]
            assert [crd.validate(r) for r in resources] == [[] for _ in resources]


def test_the_alb_numbers_follow_from_the_allowance(variants):
    (_, overlay) = variants[ALB_RENDER]
    exposure = read_exposure(overlay.resources)
    deployment = find(overlay.resources, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    env = {e["name"]: float(e["value"]) for e in app["env"] if e["value"].isdigit()}
    allowance = exposure.propagation_allowance
    assert app["lifecycle"]["preStop"] == {"httpGet": {"path": "/prestop", "port": "http"}}
    assert env["PRESTOP_MIN_SECONDS"] == allowance == 30
    serving = env["PRESTOP_MAX_SECONDS"] + env["DRAIN_SECONDS"] + env["GRACEFUL_TIMEOUT"]
    assert exposure.deregistration_delay == serving == 145
    assert pod["terminationGracePeriodSeconds"] == serving + 5 == 150
    assert env["KEEPALIVE_SECONDS"] > exposure.upstream_idle_timeout == 60
    assert exposure.request_timeout >= env["GRACEFUL_TIMEOUT"]


def test_the_exposure_components_are_opt_in():
    for overlay in BOTH:
        assert read_exposure(render(ROOT / overlay)) is None


# Broken copies: the exact problem `zdt validate` reports.


def copy_tree(destination: Path, components: tuple[str, ...], argocd: bool = False) -> Path:
    """base/, overlays/ and only the named components (with the analysis scripts of tools/e2e/
    when a rollout component is among them), and argocd/ if asked for."""
    for directory in ("base", "overlays", *components, *(["argocd"] if argocd else [])):
        shutil.copytree(ROOT / directory, destination / directory)
    if any(c.startswith("components/rollout-") for c in components):
        shutil.copytree(ROOT / ANALYSIS, destination / ANALYSIS)
        (destination / "tools" / "e2e").mkdir(parents=True)
        for path in [*(ROOT / "tools/e2e").glob("*.py"), ROOT / "tools/e2e/kustomization.yaml"]:
            shutil.copy(path, destination / "tools" / "e2e")
    return destination


def replace(path: str, old: str, new: str):
    def change(root: Path):
        text = (root / path).read_text()
        assert text.count(old) == 1, (path, old)
        (root / path).write_text(text.replace(old, new))

    return change


ALB_KUSTOMIZATION = f"{AWS_ALB}/kustomization.yaml"
ALB_TGC = f"{AWS_ALB}/targetgroupconfiguration.yaml"
GATEWAY_ROUTE = f"{GATEWAY}/httproute.yaml"
EXPOSURES = (GATEWAY, AWS_ALB)
KEEPALIVE = '- name: KEEPALIVE_SECONDS\n              value: "75"'

# (components copied, argocd/ too, the break, the problem, the renders that report it)
BROKEN = {
    "alb-idle-order-reversed": (
        EXPOSURES,
        False,
        replace(ALB_KUSTOMIZATION, KEEPALIVE, KEEPALIVE.replace("75", "50")),
        f"{DEPLOYMENT}: {CONTAINER}.env: KEEPALIVE_SECONDS 50 s must be longer than the aws-alb"
        " exposure's idle timeout to the pods, 60 s: the app would close connections the proxy"
        " is about to reuse",
        renders(ALB_RENDER),
    ),
    "gateway-idle-order-reversed": (
        (GATEWAY,),
        False,
        replace(f"{GATEWAY}/kustomization.yaml", 'value: "75"', 'value: "50"'),
        f"{DEPLOYMENT}: {CONTAINER}.env: KEEPALIVE_SECONDS 50 s must be longer than the gateway"
        " exposure's idle timeout to the pods, 60 s: the app would close connections the proxy"
        " is about to reuse",
        renders(GATEWAY),
    ),
    "idle-annotation-disagrees-with-the-alb": (
        EXPOSURES,
        False,
        replace(GATEWAY_ROUTE, 'upstream-idle-timeout: "60s"', 'upstream-idle-timeout: "50s"'),
        f"{ROUTE}: {ANNOTATIONS}[zero-downtime-app/upstream-idle-timeout]: is 50 s, but the ALB's"
        " idle_timeout.timeout_seconds is 60 s: they must agree",
        renders(ALB_RENDER),
    ),
    "request-timeout-below-graceful-timeout": (
        (GATEWAY,),
        False,
        replace(GATEWAY_ROUTE, "request: 30s", "request: 10s"),
        f"{ROUTE}: spec.rules[0].timeouts.request: 10 s is shorter than GRACEFUL_TIMEOUT 20 s:"
        " the gateway would cut a request the app would still finish",
        renders(GATEWAY),
    ),
    "prestop-below-the-alb-allowance": (
        EXPOSURES,
        False,
        replace(ALB_KUSTOMIZATION, 'value: "30"', 'value: "20"'),
        f"{DEPLOYMENT}: {CONTAINER}.lifecycle.preStop: waits at least 20 s, less than the aws-alb"
        " exposure's propagation allowance of 30 s (HTTPRoute/zero-downtime-app"
        " zero-downtime-app/propagation-allowance): the proxy may send new requests after"
        " SIGTERM",
        renders(ALB_RENDER),
    ),
    "grace-period-too-short-for-the-alb": (
        EXPOSURES,
        False,
        replace(
            ALB_KUSTOMIZATION,
            "terminationGracePeriodSeconds: 150",
            "terminationGracePeriodSeconds: 140",
        ),
        f"{DEPLOYMENT}: spec.template.spec.terminationGracePeriodSeconds: 140 s does not cover"
        " preStop up to 120 s + DRAIN_SECONDS 5 s + GRACEFUL_TIMEOUT 20 s + 5 s margin = 150 s",
        renders(ALB_RENDER),
    ),
    "deregistration-delay-too-short": (
        EXPOSURES,
        False,
        replace(ALB_TGC, 'value: "145"', 'value: "30"'),
        f"{TGC}: spec.defaultConfiguration.targetGroupAttributes"
        "[deregistration_delay.timeout_seconds]: 30 s is shorter than preStop up to 120 s +"
        " DRAIN_SECONDS 5 s + GRACEFUL_TIMEOUT 20 s = 145 s: the ALB would cut requests the pod"
        " would still finish",
        renders(ALB_RENDER),
    ),
    "target-type-instance": (
        EXPOSURES,
        False,
        replace(ALB_TGC, "targetType: ip", "targetType: instance"),
        f"{TGC}: spec.defaultConfiguration.targetType: is 'instance', must be 'ip': instance mode"
        " goes through a node port and kube-proxy, and the controller injects no readiness gate"
        " for it",
        renders(ALB_RENDER),
    ),
    "health-check-not-on-the-readiness-path": (
        EXPOSURES,
        False,
        replace(ALB_TGC, "healthCheckPath: /ready", "healthCheckPath: /healthz"),
        f"{TGC}: spec.defaultConfiguration.healthCheckConfig.healthCheckPath: is '/healthz', must"
        " be '/ready', the path of the container's readinessProbe: the ALB must see a draining"
        " pod leave as the Service does",
        renders(ALB_RENDER),
    ),
    "readiness-gate-label-missing": (
        EXPOSURES,
        True,
        replace(
            "argocd/application.yaml",
            "        elbv2.k8s.aws/pod-readiness-gate-inject: enabled\n",
            "",
        ),
        f"{APPLICATION}: spec.syncPolicy.managedNamespaceMetadata.labels: lacks"
        " elbv2.k8s.aws/pod-readiness-gate-inject: enabled: without it the AWS Load Balancer"
        " Controller injects no readiness gate, and a rollout may stop old pods before the ALB"
        " sends the new ones traffic",
        # Argo CD deploys overlays/v2 only (argocd/application.yaml).
        [f"overlays/v2+{ALB_RENDER}"],
    ),
    "target-group-configuration-unknown-field": (
        EXPOSURES,
        False,
        replace(ALB_TGC, "healthCheckInterval: 5", "healthCheckIntervalSeconds: 5"),
        f"{TGC}: spec.defaultConfiguration.healthCheckConfig: invalid for AWS Load Balancer"
        " Controller v3.5.0: Additional properties are not allowed ('healthCheckIntervalSeconds'"
        " was unexpected)",
        renders(ALB_RENDER),
    ),
    "httproute-retry-is-not-standard": (
        (GATEWAY,),
        False,
        replace(GATEWAY_ROUTE, "    timeouts:\n", "    retry:\n      attempts: 2\n    timeouts:\n"),
        f"{ROUTE}: spec.rules.0: invalid for Gateway API v1.6.1: Additional properties are not"
        " allowed ('retry' was unexpected)",
        renders(GATEWAY),
    ),
    # The analysis reaches the canary through its Service: it waits for kube-proxy's 5 s, not
    # the ALB's 30 s, and fails when it does not wait even that.
    "canary-analysis-before-propagation": (
        (CANARY, *EXPOSURES),
        False,
        replace(
            f"{CANARY}/rollout.yaml",
            "      - pause:\n          duration: 10s\n      - analysis:",
            "      - analysis:",
        ),
        None,
        None,
    ),
}

CANARY_MESSAGE = (
    f"{ROLLOUT}: spec.strategy.canary.steps[1].analysis: starts 0 s after the weight changed, less"
    " than {why} 5 s, the repository's allowance for endpoint propagation: add a pause before"
    " it, or the analysis may measure the old pods"
)
IN_CLUSTER = (
    "the in-cluster allowance (preStop 30 s less the aws-alb exposure's extra 25 s: the analysis"
    " goes through the canary Service) of"
)


def expected_problems(case: str) -> list[str]:
    _, _, _, message, broken = BROKEN[case]
    if case == "canary-analysis-before-propagation":
        base = CANARY_MESSAGE.format(why="the pods' shortest preStop,")
        return [
            *(f"{r}: {base}" for r in [*renders(CANARY), *renders(f"{CANARY}+{GATEWAY}")]),
            *(
                f"{r}: {CANARY_MESSAGE.format(why=IN_CLUSTER)}"
                for r in renders(f"{CANARY}+{ALB_RENDER}")
            ),
        ]
    return [f"{render}: {message}" for render in broken]


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_exposure_is_rejected_with_the_right_message(tmp_path, case):
    components, argocd, change, _, _ = BROKEN[case]
    root = copy_tree(tmp_path, components, argocd)
    change(root)
    assert sorted(all_problems(root)) == sorted(expected_problems(case))


def switch_on(root: Path, *components: str) -> None:
    for overlay in BOTH:
        path = root / overlay / "kustomization.yaml"
        kustomization = yaml.safe_load(path.read_text())
        kustomization["components"] = [f"../../{c}" for c in components]
        path.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def test_blue_green_with_the_alb_is_refused_citing_argo_rollouts(tmp_path):
    root = copy_tree(tmp_path, (BLUE_GREEN, GATEWAY, AWS_ALB))
    switch_on(root, BLUE_GREEN, GATEWAY, AWS_ALB)
    refusal = (
        "kustomization.yaml: components: components/rollout-blue-green with components/aws-alb"
        " is refused: Argo Rollouts' documentation (v1.9.1, docs/features/bluegreen.md) says"
        f' "{ROLLOUTS_QUOTE}": the active Service\'s selector moves to pods created without the'
        " ALB's readiness gate; use components/rollout-canary, or components/gateway-api alone"
    )
    assert [str(p) for p in check_overlays(load_overlays(root))] == [
        f"{overlay}: {refusal}" for overlay in BOTH
    ]


def test_blue_green_behind_a_gateway_waits_for_its_allowance(tmp_path):
    # An allowance over the preStop fails the preStop rule, and the old pods' scale-down delay.
    root = copy_tree(tmp_path, (BLUE_GREEN, GATEWAY))
    replace(GATEWAY_ROUTE, 'propagation-allowance: "5s"', 'propagation-allowance: "40s"')(root)
    prestop = (
        f"{DEPLOYMENT}: {CONTAINER}.lifecycle.preStop: waits at least 5 s, less than the gateway"
        " exposure's propagation allowance of 40 s (HTTPRoute/zero-downtime-app"
        " zero-downtime-app/propagation-allowance): the proxy may send new requests after"
        " SIGTERM"
    )
    scale_down = (
        f"{ROLLOUT}: spec.strategy.blueGreen.scaleDownDelaySeconds: 30 s is shorter than the"
        " gateway exposure's propagation allowance of 40 s (HTTPRoute/zero-downtime-app): old"
        " pods would stop while the proxy still sends them the active Service's traffic"
    )
    both = renders(f"{BLUE_GREEN}+{GATEWAY}")
    assert sorted(all_problems(root)) == sorted(
        [
            *(f"{r}: {prestop}" for r in [*renders(GATEWAY), *both]),
            *(f"{r}: {scale_down}" for r in both),
        ]
    )


def test_the_alb_without_gateway_api_is_one_clear_problem(tmp_path):
    root = copy_tree(tmp_path, (AWS_ALB,))
    switch_on(root, AWS_ALB)

    assert [str(p) for p in check_overlays(load_overlays(root))] == [
        f"{overlay}: kustomization.yaml: components: components/aws-alb needs"
        " components/gateway-api listed before it: it points that component's HTTPRoute at its"
        " ALB"
        for overlay in BOTH
    ]


def test_the_summary_prints_each_exposures_numbers(tmp_path):
    """What `zdt validate` prints per render (its CLI runs in tests/test_rollout_manifests.py,
    over every render, these included)."""
    root = copy_tree(tmp_path, EXPOSURES)
    switch_on(root, GATEWAY, AWS_ALB)
    alb = [line for overlay in load_overlays(root) for line in describe(overlay)]
    switch_on(root, GATEWAY)
    gateway = [line for overlay in load_overlays(root) for line in describe(overlay)]

    assert (
        gateway.count(
            "  exposure:  gateway, HTTPRoute zero-downtime-app / -> Service zero-downtime-app:80,"
            " request timeout 30s, retries off; propagation allowance 5s; idle: proxy 60s < app"
            " KEEPALIVE_SECONDS 75s"
        )
        == 2
    )
    assert (
        alb.count(
            "  exposure:  aws-alb, HTTPRoute zero-downtime-app / -> Service zero-downtime-app:80,"
            " request timeout 30s, retries off; propagation allowance 30s; idle: proxy 60s < app"
            " KEEPALIVE_SECONDS 75s"
        )
        == 2
    )
    assert (
        alb.count(
            "  alb:       target type ip, health check /ready on traffic-port every 5s (timeout 2s,"
            " 2 up, 2 down), deregistration delay 145s"
        )
        == 2
    )
    assert (
        alb.count(
            "  shutdown:  preStop 30-120s (until quiet for 2s) -> SIGTERM -> drain 5s -> graceful"
            " stop up to 20s -> SIGKILL at 150s"
        )
        == 2
    )


# The documentation of the components.


def test_the_doc_gives_the_lines_the_refusal_and_the_numbers():
    doc = DOC.read_text()
    assert "- ../../components/gateway-api\n" in doc
    assert "- ../../components/aws-alb\n" in doc
    assert ROLLOUTS_QUOTE in doc
    assert ROLLOUTS_QUOTE in REFUSAL_REASONS[(BLUE_GREEN, AWS_ALB)]
    assert "## Proven here: the rehearsal behind a real proxy" in doc
    assert "## What only a real ALB can prove" in doc
    for number in ("30 s", "145", "150 s", "75", "15 s"):
        assert number in doc
