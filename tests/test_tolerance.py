"""The endpoint lag the rendered contract tolerates, read from the real overlays and variants of
them (kustomize). The runs that show the figure true are in `zdt demo` and test_rehearsal.py."""

import pytest

from tools.rehearsal import tolerance
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.repo import ROOT
from tools.validate.workload import PreStopTiming

V2 = ROOT / "overlays/v2"


def template_of(ops: list[dict], tmp_path):
    workload = load_overlay(variants.write(V2, ops, tmp_path / "variant"), "variant")
    return workload.deployment.template


def test_the_overlay_tolerates_its_pre_stop_hook_plus_its_drain():
    found = tolerance.of(load_overlay(V2).deployment.template, "overlays/v2")
    assert (found.pre_stop, found.drain) == (PreStopTiming(5, 90, quiet=2), 5)
    # While traffic arrives the hook waits up to its maximum; with none, at least its minimum.
    assert (found.seconds, found.floor) == (95, 10)
    assert found.describe() == (
        "preStop /prestop up to PRESTOP_MAX_SECONDS 90 s while traffic arrives (at least"
        " PRESTOP_MIN_SECONDS 5 s, then until quiet for 2 s) + DRAIN_SECONDS 5 s"
    )


def test_a_sleep_tolerates_the_same_whatever_the_traffic(tmp_path):
    found = tolerance.of(template_of(variants.pre_stop_sleep(5), tmp_path), "variant")
    assert (found.seconds, found.floor) == (10, 10)
    assert found.describe() == "preStop 5 s + DRAIN_SECONDS 5 s"


def test_a_shorter_pre_stop_or_drain_tolerates_less(tmp_path):
    rendered = variants.deployment(V2)
    ops = variants.pre_stop_sleep(2) + variants.env(rendered, {"DRAIN_SECONDS": "1.5"})
    assert tolerance.of(template_of(ops, tmp_path), "variant").seconds == 3.5


def test_without_a_pre_stop_only_the_drain_is_left(tmp_path):
    ops = variants.without_pre_stop(variants.deployment(V2))
    assert tolerance.of(template_of(ops, tmp_path), "variant").seconds == 5


def test_a_grace_period_shorter_than_the_chain_caps_it(tmp_path):
    ops = [variants.put("/spec/template/spec/terminationGracePeriodSeconds", 7)]
    found = tolerance.of(template_of(ops, tmp_path), "variant")
    assert (found.seconds, found.floor) == (7, 7)
    assert found.describe().startswith("terminationGracePeriodSeconds 7 s")


def test_a_drain_the_app_would_refuse_is_named(tmp_path):
    ops = variants.env(variants.deployment(V2), {"DRAIN_SECONDS": "soon"})
    with pytest.raises(RehearsalError, match="^variant: DRAIN_SECONDS"):
        tolerance.of(template_of(ops, tmp_path), "variant")


def test_a_prestop_setting_the_app_would_refuse_is_named(tmp_path):
    ops = variants.env(variants.deployment(V2), {"PRESTOP_MAX_SECONDS": "1"})
    with pytest.raises(RehearsalError, match="^variant: PRESTOP_MIN_SECONDS must not exceed"):
        tolerance.of(template_of(ops, tmp_path), "variant")
