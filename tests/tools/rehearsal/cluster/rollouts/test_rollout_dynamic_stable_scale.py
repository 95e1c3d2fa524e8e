"""The rehearsal's Rollout reader refuses what argo-rollouts v1.9.1 refuses in a canary without
trafficRouting (pkg/apis/rollouts/validation ValidateRolloutStrategyCanary), with its message,
and a trafficRouting canary, which it does not emulate."""

import pytest

from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.fields import Fields
from tools.rehearsal.manifests.rollout import Canary, read_strategy
from tools.rehearsal.manifests.sources import load_overlay
from tools.repo import ROOT

WHERE = "render: Rollout app"


def strategy(**canary) -> dict:
    return {"strategy": {"canary": {"steps": [{"setWeight": 25}], **canary}}}


def test_dynamic_stable_scale_without_traffic_routing_is_refused_as_argo_rollouts_words_it():
    with pytest.raises(RehearsalError) as refused:
        read_strategy(Fields(strategy(dynamicStableScale=True), WHERE, "spec"), {})
    assert str(refused.value) == (
        f"{WHERE}: spec.strategy.canary.dynamicStableScale: Invalid value: true: Canary"
        " dynamicStableScale can only be used with traffic routing"
    )


def test_dynamic_stable_scale_false_is_the_basic_canary():
    read = read_strategy(Fields(strategy(dynamicStableScale=False), WHERE, "spec"), {})
    assert isinstance(read, Canary)


def test_scale_down_delay_seconds_without_traffic_routing_is_refused_too():
    with pytest.raises(RehearsalError) as refused:
        read_strategy(Fields(strategy(scaleDownDelaySeconds=0), WHERE, "spec"), {})
    assert str(refused.value) == (
        f"{WHERE}: spec.strategy.canary.scaleDownDelaySeconds: Invalid value: 0: Canary"
        " scaleDownDelaySeconds can only be used with traffic routing"
    )


def test_a_traffic_routed_canary_is_not_rehearsed():
    routed = strategy(dynamicStableScale=True, trafficRouting={"nginx": {"stableIngress": "a"}})
    with pytest.raises(RehearsalError, match=r"spec\.strategy\.canary\.trafficRouting: only the"):
        read_strategy(Fields(routed, WHERE, "spec"), {})


def test_the_render_and_the_rollout_are_named(tmp_path):
    patch = variants.put("/spec/strategy/canary/dynamicStableScale", True)
    overlay = variants.adoption(
        ROOT / "overlays/v1", "rollout-canary", "progressively", tmp_path, rollout_ops=[patch]
    )
    with pytest.raises(RehearsalError) as refused:
        load_overlay(overlay, label="overlays/v1 with rollout-canary")
    assert str(refused.value) == (
        "overlays/v1 with rollout-canary: Rollout zero-downtime-app:"
        " spec.strategy.canary.dynamicStableScale: Invalid value: true: Canary"
        " dynamicStableScale can only be used with traffic routing"
    )
