"""The Argo Rollouts controller, emulated for blueGreen and basic (replica-weight) canary.

It drives the same ReplicaSets and pods as the Deployment controller, with Argo Rollouts'
rules (argoproj/argo-rollouts rollout/bluegreen.go, rollout/canary.go,
utils/replicaset/canary.go):
- blue-green: the new ReplicaSet comes up in full behind the preview Service; once every new pod
  is available the pre-promotion analysis runs against that Service; if it passes (and
  autoPromotionEnabled) the active Service switches to the new pods, and the old ones are scaled
  down scaleDownDelaySeconds later. A failed analysis aborts: the active Service never moves,
  the preview Service goes back to the stable pods and the new ones are scaled down
  abortScaleDownDelaySeconds later.
- canary: each setWeight step scales the canary and stable ReplicaSets to ceil(replicas x
  weight) and ceil(replicas x (1 - weight)) within maxSurge/maxUnavailable (the Service everyone
  uses selects both, so the canary gets its share of the requests); pause steps wait; an
  analysis step runs against the canary Service. A failed analysis aborts: weight 0, the canary
  scaled to zero and the stable pods back to full.
Services' selectors change as Argo Rollouts changes them (the pod-template hash), through
`route`; each change reaches the emulated Service after the propagation delay.
"""

import asyncio
from collections.abc import Awaitable, Callable

from tools.rehearsal.cluster.deployment import DeploymentController, ReplicaSet
from tools.rehearsal.cluster.rollouts.canary import canary_counts
from tools.rehearsal.manifests.spec import Analysis, BlueGreen, Canary, Rollout

# Argo Rollouts' rollouts-pod-template-hash selector of a managed Service: (name, hash).
Route = Callable[[str, str], None]
# Runs an analysis against a Service; True when it passed.
Analyse = Callable[[Analysis, str], Awaitable[bool]]


class RolloutController(DeploymentController):
    def __init__(self, *args, rollout: Rollout, route: Route, analyse: Analyse, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rollout = rollout
        self.route = route
        self.analyse = analyse
        self.stable: ReplicaSet | None = None
        self.aborted_at: float | None = None
        self.abort_reason = ""
        self.promoted_at: float | None = None
        self.step = 0  # canary: the index of the current step
        self.pause_started: float | None = None
        self.analysis: asyncio.Task | None = None
        self.analysis_at = ""  # where the analysis runs: "pre-promotion", "step 2"
        self.passed: set[str] = set()  # where analyses passed in this rollout

    def apply(self, deployment) -> None:
        # The version that completed (or the first one) is the stable one; after an abort the
        # stable one stays.
        if self.replica_sets and (self.stable is None or self.completed_at is not None):
            self.stable = self.new
        super().apply(deployment)
        self.aborted_at = self.promoted_at = self.pause_started = None
        self.abort_reason = ""
        self.step = 0
        self.analysis = None
        self.passed = set()

    # -- what the run reads --------------------------------------------------------------------

    @property
    def aborted(self) -> bool:
        return self.aborted_at is not None

    def old_pods(self):
        """Pods of every ReplicaSet but the one being rolled out (the users' old version)."""
        return [pod for rs in self.old for pod in rs.pods]

    # -- reconciliation ------------------------------------------------------------------------

    def reconcile_strategy(self) -> None:
        spec, new = self.spec, self.new
        if self.stable is None or self.stable is new:
            # The first version (or the same one again): no steps, no analysis.
            self._scale(new, spec.replicas)
            for name in self._managed_services():
                self.route(name, new.template.template_hash)
            if new.available(spec.min_ready_seconds) == spec.replicas:
                self.stable = new
                self._complete()
            return
        if isinstance(self.rollout.strategy, BlueGreen):
            self._blue_green(self.rollout.strategy)
        else:
            self._canary(self.rollout.strategy)

    def _managed_services(self) -> list[str]:
        strategy = self.rollout.strategy
        if isinstance(strategy, BlueGreen):
            return [strategy.active_service, strategy.preview_service]
        return [name for name in (strategy.canary_service, strategy.stable_service) if name]

    def _complete(self) -> None:
        if self.completed_at is None:
            self.completed_at = self.timeline.now()
            self.timeline.record(
                "rollout", "rollout complete", f"{self.spec.replicas} x {self.new.template.version}"
            )

    def _abort(self, reason: str) -> None:
        if self.aborted_at is None:
            self.aborted_at = self.timeline.now()
            self.abort_reason = reason
            self.failed_reason = f"aborted: {reason}"
            self.timeline.record("rollout", "aborted", reason)

    def _run_analysis(self, analysis: Analysis, service: str, where: str) -> bool | None:
        """Start the analysis once; None while it runs, then whether it passed."""
        if where in self.passed:
            return True
        if self.analysis is None:
            self.analysis_at = where
            self.timeline.record("rollout", "analysis started", f"{where}, against {service}")
            self.analysis = asyncio.get_running_loop().create_task(self.analyse(analysis, service))
            self.analysis.add_done_callback(lambda _: self.wake.set())
        if not self.analysis.done():
            return None
        return self.analysis.result()

    def _analysis_finished(self, passed: bool) -> None:
        if self.analysis is None:
            return  # passed before
        self.timeline.record(
            "rollout", "analysis passed" if passed else "analysis failed", self.analysis_at
        )
        if passed:
            self.passed.add(self.analysis_at)
        self.analysis = None

    # -- blue-green ----------------------------------------------------------------------------

    def _blue_green(self, strategy: BlueGreen) -> None:
        spec, new, stable = self.spec, self.new, self.stable
        now = self.timeline.now()
        if self.aborted:
            self._scale(stable, spec.replicas)
            self.route(strategy.preview_service, stable.template.template_hash)
            if now - self.aborted_at >= strategy.abort_scale_down_delay:
                self._scale(new, 0)
            return
        self._scale(new, spec.replicas)
        self.route(strategy.preview_service, new.template.template_hash)
        if self.promoted_at is not None:
            if now - self.promoted_at >= strategy.scale_down_delay:
                self._scale(stable, 0)
            return
        self._scale(stable, spec.replicas)
        if new.available(spec.min_ready_seconds) < spec.replicas:
            return
        if strategy.pre_promotion_analysis is not None:
            passed = self._run_analysis(
                strategy.pre_promotion_analysis, strategy.preview_service, "pre-promotion"
            )
            if passed is None:
                return
            self._analysis_finished(passed)
            if not passed:
                self._abort("pre-promotion analysis failed")
                return
        if not strategy.auto_promotion:
            return  # paused until promoted by hand
        self.route(strategy.active_service, new.template.template_hash)
        self.promoted_at = now
        self.timeline.record("rollout", "promoted", f"{strategy.active_service} -> new pods")
        self._complete()

    # -- canary --------------------------------------------------------------------------------

    def _canary(self, strategy: Canary) -> None:
        new = self.new
        if strategy.canary_service:
            self.route(strategy.canary_service, new.template.template_hash)
        if strategy.stable_service:
            self.route(strategy.stable_service, self.stable.template.template_hash)
        if self.aborted:
            self._scale_canary(0)
            return
        while self.step < len(strategy.steps):
            step = strategy.steps[self.step]
            if step.weight is not None:
                self._scale_canary(step.weight)
                if not self._at_weight(step.weight):
                    return
            elif step.pause is not None:
                now = self.timeline.now()
                if self.pause_started is None:
                    self.pause_started = now
                    self.timeline.record("rollout", "paused", f"step {self.step + 1}")
                if now - self.pause_started < step.pause:
                    return
                self.pause_started = None
            elif step.analysis is not None:
                where = f"step {self.step + 1}"
                passed = self._run_analysis(step.analysis, strategy.canary_service or "", where)
                if passed is None:
                    return
                self._analysis_finished(passed)
                if not passed:
                    self._abort(f"analysis at {where} failed")
                    self._scale_canary(0)
                    return
            self.step += 1
            self.timeline.record("rollout", "step", f"{self.step}/{len(strategy.steps)} done")
        self._scale_canary(100)
        if self._at_weight(100):
            if strategy.stable_service:
                self.route(strategy.stable_service, new.template.template_hash)
            self._complete()

    def _others(self) -> list[ReplicaSet]:
        return [rs for rs in self.old if rs is not self.stable]

    def _scale_canary(self, weight: int) -> None:
        spec = self.spec
        counts = canary_counts(
            spec.replicas,
            weight,
            spec.fenceposts,
            self.new,
            self.stable,
            self._others(),
            spec.min_ready_seconds,
        )
        for rs in self._others():
            self._scale(rs, 0)
        self._scale(self.stable, counts.stable)
        self._scale(self.new, counts.new)

    def _at_weight(self, weight: int) -> bool:
        """AtDesiredReplicaCountsForCanary (basic canary): the new pods all available, the
        stable pods all created, no older pod available."""
        spec, new, stable = self.spec, self.new, self.stable
        min_ready = spec.min_ready_seconds
        counts = canary_counts(
            spec.replicas, weight, spec.fenceposts, new, stable, self._others(), min_ready
        )
        if new.replicas != counts.new or new.available(min_ready) != counts.new:
            return False
        if stable.replicas != counts.stable or len(stable.active()) != counts.stable:
            return False
        return all(rs.available(min_ready) == 0 for rs in self._others())

    def complete(self) -> bool:
        return self.completed_at is not None
