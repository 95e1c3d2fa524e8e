"""Replica inflation across releases (kubernetes/kubernetes#72775, #90461): does the HPA keep,
after rollout upon rollout, more pods than the load needs? Five releases two minutes apart run
under the emulated Deployment controller, metrics-server and HPA (tests/autoscaled_releases.py),
with a steady load of 600m shared by the Service's pods: at 70% of the 250m request (175m a pod)
it needs 4 pods.

Upstream's HPA reads the current count from the scale's spec.replicas since kubernetes#79035, so
surge pods are no longer written back as the new count, and a proposal past the current count
against the direction of scaling is dropped (#85027). What still inflates the count is CPU that
new pods burn after they turn ready (a warm-up): groupPods (replica_calculator.go) sets a pod's
sample aside only until it covers one full metrics window after the pod turned ready.
"""

from tests.autoscaled_releases import (
    LoadModel,
    Rehearsed,
    Releases,
    rehearse,
    shipped_autoscaler,
    shipped_deployment,
)

LOAD = 0.6  # cores
RELEASES = Releases(count=5, first_at=60, interval=120)
NEED = 4


def report(rehearsed: Rehearsed) -> str:
    return f"counts per release:\n{rehearsed.describe()}"


def test_the_shipped_settings_keep_the_count_at_what_the_load_needs_release_after_release():
    """base/: maxSurge 1, maxUnavailable 0, minReadySeconds 3, the HPA's 300 s scale-down
    window; the service turns ready at once and burns no CPU beyond its share of the load. The
    old pod is gone 3 s after its successor turned ready, before the successor's first full
    metrics window: the HPA never counts more pods than spec.replicas."""
    rehearsed = rehearse(shipped_deployment(), shipped_autoscaler(), LoadModel(LOAD), RELEASES)
    assert rehearsed.need == NEED
    assert rehearsed.peaks == [NEED] * RELEASES.count, report(rehearsed)
    assert rehearsed.settled == [NEED] * RELEASES.count, report(rehearsed)
    assert all(r.most_counted <= NEED for r in rehearsed.rollouts), report(rehearsed)


def test_a_warm_up_before_readiness_is_set_aside_by_the_cpu_initialization_rule():
    """A service that burns 250m more for 20 s and turns ready only then: within the cpu
    initialization period (5 min) groupPods ignores a pod's sample until it covers a full
    window after the pod turned ready, so the burst never reaches the average."""
    warm_first = LoadModel(LOAD, warm_up=0.25, warm_up_seconds=20, ready_after=20)
    rehearsed = rehearse(shipped_deployment(), shipped_autoscaler(), warm_first, RELEASES)
    assert rehearsed.peaks == [NEED] * RELEASES.count, report(rehearsed)
    assert rehearsed.settled == [NEED] * RELEASES.count, report(rehearsed)


def test_surge_pods_the_hpa_counts_do_not_inflate_the_count():
    """maxSurge 100% with minReadySeconds 45 (past the 15 s metrics window and a sync): while each
    rollout runs, the HPA counts twice spec.replicas, as #72775's reporters saw. It reads the
    current count from spec.replicas, and its proposal is ceil(usage / target) over the pods it
    counts: the surge pods take the share of the load that the old pods lose, so the count
    stays."""
    manifest = shipped_deployment()
    manifest["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "100%"
    manifest["spec"]["minReadySeconds"] = 45
    rehearsed = rehearse(manifest, shipped_autoscaler(), LoadModel(LOAD), RELEASES)
    assert all(r.most_counted == 2 * NEED for r in rehearsed.rollouts), report(rehearsed)
    assert rehearsed.peaks == [NEED] * RELEASES.count, report(rehearsed)
    assert rehearsed.settled == [NEED] * RELEASES.count, report(rehearsed)


def test_a_warm_up_past_readiness_inflates_the_count_and_the_scale_down_window_keeps_it():
    """The shipped manifests, and a JVM-like service that turns ready at once but burns one
    request (250m) more for its first 60 s. Each release's new pods count once they have
    served a full window: the HPA scales up at once (scaleUp window 0, 2 pods per 30 s) to
    maxReplicas, and the 300 s scale-down window holds that past the next release, two minutes
    on, whose new pods burn again: the count never returns to the need."""
    jvm_like = LoadModel(LOAD, warm_up=0.25, warm_up_seconds=60)
    rehearsed = rehearse(shipped_deployment(), shipped_autoscaler(), jvm_like, RELEASES)
    assert rehearsed.settled == [6] * RELEASES.count, report(rehearsed)


def test_with_room_to_grow_the_inflation_compounds_release_after_release():
    """The same service with maxReplicas 20: more pods bring more warming pods to the next
    rollout, so each release leaves more pods than the one before, as in #72775's
    383 -> 479 -> 589 -> 664 (there within one rollout, by another mechanism)."""
    autoscaler = shipped_autoscaler()
    autoscaler["spec"]["maxReplicas"] = 20
    jvm_like = LoadModel(LOAD, warm_up=0.25, warm_up_seconds=60)
    releases = Releases(count=4, first_at=60, interval=120)
    rehearsed = rehearse(shipped_deployment(), autoscaler, jvm_like, releases)
    settled = rehearsed.settled
    assert settled[0] > NEED, report(rehearsed)
    assert all(a < b for a, b in zip(settled, settled[1:], strict=False)), report(rehearsed)
