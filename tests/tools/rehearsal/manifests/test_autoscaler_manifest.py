"""Reading a HorizontalPodAutoscaler: the API's defaults as kubernetes
pkg/apis/autoscaling/v2/defaults.go sets them, and one clear error for each thing the rehearsal
cannot act on (upstream's validation messages where it has one), from the shipped manifests in
base/ changed one field at a time."""

import copy

import pytest
import yaml

from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.autoscaler import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    MetricTarget,
    ResourceMetric,
    ScalingPolicy,
    ScalingRules,
    read_autoscaler,
)
from tools.rehearsal.manifests.workload import read_workload
from tools.repo import ROOT

BASE = [
    document
    for path in sorted((ROOT / "base").glob("*.yaml"))
    if path.name != "kustomization.yaml"
    for document in yaml.safe_load_all(path.read_text())
    if document
]
WHERE = "base: HorizontalPodAutoscaler zero-downtime-app"


def resources(change=None, resource_kind: str = "HorizontalPodAutoscaler") -> list[dict]:
    """The base manifests, one object changed in place by `change`."""
    copies = copy.deepcopy(BASE)
    if change is not None:
        change(next(r for r in copies if r["kind"] == resource_kind))
    return copies


def read(change=None):
    return read_autoscaler(resources(change), "base", "Deployment", "zero-downtime-app")


def spec_set(**values):
    def change(hpa):
        hpa["spec"].update(values)

    return change


def metric(value):
    return spec_set(metrics=[value])


def test_the_shipped_autoscaler_reads_as_written():
    hpa = read()
    assert (hpa.name, hpa.namespace, hpa.min_replicas, hpa.max_replicas) == (
        "zero-downtime-app",
        "default",
        3,
        6,
    )
    assert (hpa.target.kind, hpa.target.name, hpa.target.api_version) == (
        "Deployment",
        "zero-downtime-app",
        "apps/v1",
    )
    assert hpa.metrics == (ResourceMetric("cpu", MetricTarget("Utilization", 70)),)
    assert hpa.behavior.scale_up == ScalingRules(0, "Max", (ScalingPolicy("Pods", 2, 30),))
    assert hpa.behavior.scale_down == ScalingRules(300, "Max", (ScalingPolicy("Pods", 1, 60),))


def test_an_autoscaler_of_another_workload_is_not_read():
    assert read_autoscaler(BASE, "base", "Deployment", "other") is None
    assert read_autoscaler(BASE, "base", "Rollout", "zero-downtime-app") is None


def test_the_api_defaults_fill_what_is_not_written():
    """SetDefaults_HorizontalPodAutoscaler: minReplicas 1, cpu at 80%; no behavior stays none
    (the controller's behavior-less path)."""

    def bare(hpa):
        for key in ("minReplicas", "metrics", "behavior"):
            del hpa["spec"][key]

    hpa = read(bare)
    assert hpa.min_replicas == 1
    assert hpa.metrics == (ResourceMetric("cpu", MetricTarget("Utilization", 80)),)
    assert hpa.behavior is None


def test_a_behavior_is_completed_with_the_default_rules():
    """SetDefaults_HorizontalPodAutoscalerBehavior / copyHPAScalingRules: what is written wins,
    each direction's missing fields come from defaultHPAScaleUpRules / ...ScaleDownRules (the
    scale-down window stays unset: the controller's flag applies)."""
    hpa = read(spec_set(behavior={}))
    four_pods_or_double = (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
    assert hpa.behavior.scale_up == ScalingRules(0, "Max", four_pods_or_double)
    assert hpa.behavior.scale_down == ScalingRules(
        None, "Max", (ScalingPolicy("Percent", 100, 15),)
    )
    assert (hpa.behavior.scale_up, hpa.behavior.scale_down) == (
        DEFAULT_SCALE_UP,
        DEFAULT_SCALE_DOWN,
    )
    hpa = read(spec_set(behavior={"scaleUp": {"selectPolicy": "Min", "tolerance": "50m"}}))
    assert hpa.behavior.scale_up == ScalingRules(
        0, "Min", DEFAULT_SCALE_UP.policies, tolerance=0.05
    )
    hpa = read(spec_set(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}}))
    assert hpa.behavior.scale_down.stabilization_window_seconds == 60
    assert hpa.behavior.scale_down.policies == DEFAULT_SCALE_DOWN.policies
    assert read(spec_set(behavior={"scaleDown": {"tolerance": 0.2}})).behavior.scale_down.tolerance


def test_quantities_are_milli_values_as_the_hpa_reads_them():
    average = {"type": "AverageValue", "averageValue": "175m"}
    cpu = read(metric({"type": "Resource", "resource": {"name": "cpu", "target": average}}))
    assert cpu.metrics[0].target == MetricTarget("AverageValue", average_value=175)
    average = {"type": "AverageValue", "averageValue": "0.9"}
    cpu = read(metric({"type": "Resource", "resource": {"name": "cpu", "target": average}}))
    assert cpu.metrics[0].target.average_value == 900
    average = {"type": "AverageValue", "averageValue": "200Mi"}
    memory = read(metric({"type": "Resource", "resource": {"name": "memory", "target": average}}))
    assert memory.metrics[0].target.average_value == 200 * 2**20 * 1000


def test_a_container_resource_metric_names_the_pods_container():
    target = {"type": "Utilization", "averageUtilization": 60}
    source = {"name": "cpu", "container": "app", "target": target}
    hpa = read(metric({"type": "ContainerResource", "containerResource": source}))
    assert hpa.metrics[0] == ResourceMetric("cpu", MetricTarget("Utilization", 60), "app")
    assert hpa.metrics[0].type == "ContainerResource"


def test_the_workload_carries_its_autoscaler_and_starts_at_its_minimum():
    workload = read_workload(resources(), "base")
    assert workload.autoscaler == read()

    def without_replicas(deployment):
        del deployment["spec"]["replicas"]

    def minimum_four(hpa):
        hpa["spec"]["minReplicas"] = 4

    docs = resources(without_replicas, "Deployment")
    minimum_four(next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler"))
    assert read_workload(docs, "base").deployment.replicas == 4


UTILIZATION = {"type": "Utilization", "averageUtilization": 70}
METRIC = "spec.metrics[0]"
SCALE_UP = "spec.behavior.scaleUp"


def behavior(scale_up):
    return spec_set(behavior={"scaleUp": scale_up})


def api_version(value):
    def change(hpa):
        hpa["apiVersion"] = value

    return change


def target_api_version(hpa):
    hpa["spec"]["scaleTargetRef"]["apiVersion"] = "extensions/v1beta1"


# (change, the error after "base: HorizontalPodAutoscaler zero-downtime-app: ")
REJECTED = {
    "autoscaling/v1": (
        api_version("autoscaling/v1"),
        "apiVersion: 'autoscaling/v1' is not supported: the rehearsal reads autoscaling/v2",
    ),
    "autoscaling/v2beta2": (
        api_version("autoscaling/v2beta2"),
        "apiVersion: 'autoscaling/v2beta2' is not supported: the rehearsal reads autoscaling/v2",
    ),
    "a target of another API version": (
        target_api_version,
        "spec.scaleTargetRef.apiVersion: is 'extensions/v1beta1', not 'apps/v1' of Deployment"
        " zero-downtime-app",
    ),
    "Pods metrics": (
        metric({"type": "Pods", "pods": {}}),
        f"{METRIC}.type: 'Pods' is not supported: the rehearsal has only resource metrics"
        " (Resource, ContainerResource)",
    ),
    "Object metrics": (
        metric({"type": "Object", "object": {}}),
        f"{METRIC}.type: 'Object' is not supported: the rehearsal has only resource metrics"
        " (Resource, ContainerResource)",
    ),
    "External metrics": (
        metric({"type": "External", "external": {}}),
        f"{METRIC}.type: 'External' is not supported: the rehearsal has only resource metrics"
        " (Resource, ContainerResource)",
    ),
    "an unknown metric type": (
        metric({"type": "Cheddar"}),
        f"{METRIC}.type: 'Cheddar' is not a metric source type (Resource, ContainerResource,"
        " Pods, Object, External)",
    ),
    "a metric without its source": (
        metric({"type": "ContainerResource", "resource": {"name": "cpu"}}),
        f"{METRIC}.containerResource: must populate information for the given metric source",
    ),
    "another resource": (
        metric(
            {"type": "Resource", "resource": {"name": "ephemeral-storage", "target": UTILIZATION}}
        ),
        f"{METRIC}.resource.name: 'ephemeral-storage' is not supported: the rehearsal measures"
        " cpu and memory",
    ),
    "a Value target": (
        metric({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Value"}}}),
        f"{METRIC}.resource.target.type: 'Value' is not supported for a resource metric:"
        " Utilization or AverageValue",
    ),
    "both targets": (
        metric(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {**UTILIZATION, "averageValue": "100m"}},
            }
        ),
        f"{METRIC}.resource.target.averageValue: may not set both a target raw value and a"
        " target utilization",
    ),
    "a Utilization target without it": (
        metric(
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
        ),
        f"{METRIC}.resource.target.averageUtilization: a Utilization target needs it",
    ),
    "a zero utilization": (
        metric(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 0},
                },
            }
        ),
        f"{METRIC}.resource.target.averageUtilization: must be greater than 0",
    ),
    "a zero average value": (
        metric(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": 0}},
            }
        ),
        f"{METRIC}.resource.target.averageValue: must be positive",
    ),
    "an average value that is no quantity": (
        metric(
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "lots"},
                },
            }
        ),
        f"{METRIC}.resource.target.averageValue: not a memory quantity: 'lots'",
    ),
    "another container": (
        metric(
            {
                "type": "ContainerResource",
                "containerResource": {"name": "cpu", "container": "sidecar", "target": UTILIZATION},
            }
        ),
        f"{METRIC}.containerResource.container: 'sidecar' is not the pod's container 'app'",
    ),
    "no minimum": (
        spec_set(minReplicas=0),
        "spec.minReplicas: is 0, must be at least 1 (scaling to zero needs Object or External"
        " metrics, which the rehearsal does not have)",
    ),
    "no maximum": (spec_set(maxReplicas=0), "spec.maxReplicas: must be greater than 0"),
    "a maximum under the minimum": (
        spec_set(maxReplicas=2),
        "spec.maxReplicas: is 2, must be greater than or equal to minReplicas (3)",
    ),
    "another pod selection": (
        spec_set(selectionStrategy="OwnerReferences"),
        "spec.selectionStrategy: 'OwnerReferences' is not supported: the rehearsal counts the"
        " pods the target's selector selects (LabelSelector)",
    ),
    "another select policy": (
        behavior({"selectPolicy": "Average"}),
        f"{SCALE_UP}.selectPolicy: 'Average' is not one of Max, Min, Disabled",
    ),
    "no policies": (
        behavior({"policies": []}),
        f"{SCALE_UP}.policies: must specify at least one Policy",
    ),
    "another policy type": (
        behavior({"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]}),
        f"{SCALE_UP}.policies[0].type: 'Nodes' is not one of Pods, Percent",
    ),
    "a zero policy value": (
        behavior({"policies": [{"type": "Pods", "value": 0, "periodSeconds": 60}]}),
        f"{SCALE_UP}.policies[0].value: must be greater than zero",
    ),
    "a zero period": (
        behavior({"policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]}),
        f"{SCALE_UP}.policies[0].periodSeconds: must be greater than zero",
    ),
    "a period over 30 minutes": (
        behavior({"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}),
        f"{SCALE_UP}.policies[0].periodSeconds: must be less than or equal to 1800",
    ),
    "a window over an hour": (
        behavior({"stabilizationWindowSeconds": 3601}),
        f"{SCALE_UP}.stabilizationWindowSeconds: must be less than or equal to 3600",
    ),
    "a negative window": (
        behavior({"stabilizationWindowSeconds": -1}),
        f"{SCALE_UP}.stabilizationWindowSeconds: expected a number >= 0, got -1",
    ),
    "a tolerance that is no quantity": (
        behavior({"tolerance": "ten percent"}),
        f"{SCALE_UP}.tolerance: not a quantity: 'ten percent'",
    ),
}


@pytest.mark.parametrize("name", REJECTED)
def test_what_cannot_be_rehearsed_is_rejected_naming_the_field(name):
    change, message = REJECTED[name]
    with pytest.raises(RehearsalError) as raised:
        read(change)
    assert str(raised.value) == f"{WHERE}: {message}"


def test_two_autoscalers_of_one_workload_are_rejected():
    twice = resources()
    second = copy.deepcopy(next(r for r in twice if r["kind"] == "HorizontalPodAutoscaler"))
    second["metadata"]["name"] = "second"
    twice.append(second)
    with pytest.raises(RehearsalError) as raised:
        read_autoscaler(twice, "base", "Deployment", "zero-downtime-app")
    assert str(raised.value) == (
        "base: several HorizontalPodAutoscalers (zero-downtime-app, second) target Deployment"
        " zero-downtime-app: one can be rehearsed"
    )
