"""`zdt soak`'s sizing of the contract against the lag: the contract read from the render, the
model's quantile where it breaks, the fixed-sleep variant it compares with, what it counts."""

from tools.bench.soak import Contract, contract_overlay, prestop_held, prestop_unfinished
from tools.rehearsal.cluster.network.lag import KUBE_PROXY_LAG, UniformLag
from tools.rehearsal.timeline import PodEvent


def test_the_shipped_contract_against_the_default_lag(tmp_path):
    target = contract_overlay("overlays/v2", None, tmp_path)
    contract = Contract.of(target, "overlays/v2", KUBE_PROXY_LAG)
    assert (contract.found.seconds, contract.found.floor) == (95, 10)
    assert 0.9999 < contract.within < 1
    text = contract.describe()
    assert "tolerates 95 s of lag while traffic arrives, 10 s with none" in text
    assert "the contract breaks past the model's p99.99" in text


def test_the_fixed_sleep_variant_is_the_contract_before_the_hook(tmp_path):
    target = contract_overlay("overlays/v2", 5, tmp_path)
    template = target.deployment.template
    assert (template.pre_stop.action, template.pre_stop.seconds) == ("sleep", 5)
    assert template.termination_grace == 5 + 5 + 20 + 5
    contract = Contract.of(target, "variant", KUBE_PROXY_LAG)
    assert (contract.found.seconds, contract.found.floor) == (10, 10)
    # Once in about 70 updates the model is later than that.
    assert 0.97 < contract.within < 0.995


def test_a_lag_the_contract_always_covers_says_so(tmp_path):
    target = contract_overlay("overlays/v2", 5, tmp_path)
    contract = Contract.of(target, "variant", UniformLag(2.0))
    assert contract.within == 1
    assert "no update in 200 000 draws later than 10 s" in contract.describe()


def test_the_prestop_held_each_pod_from_termination_to_sigterm():
    summary = {
        "pods": [
            {PodEvent.TERMINATING: 10.0, PodEvent.SIGTERM: 17.25},
            {PodEvent.TERMINATING: 12.0, PodEvent.SIGTERM: None},  # the run ended first
            {PodEvent.TERMINATING: 1.0, PodEvent.SIGTERM: None, PodEvent.EXITED: 2.0},  # crashed
            {PodEvent.TERMINATING: None, PodEvent.SIGTERM: None},  # a new pod
        ]
    }
    assert prestop_held(summary) == [7.25]
    # The second had been in its preStop 8 s when the run ended at 20 s.
    assert prestop_unfinished(summary, ended=20.0) == [8.0]
