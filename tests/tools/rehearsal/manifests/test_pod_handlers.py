"""Probes and preStop hooks as the rehearsal reads them from the render
(tools/rehearsal/manifests/pod.py): every handler the kubelet runs, and a one-line error naming
the field for those it cannot rehearse."""

import pytest

from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.pod import PreStop, Probe
from tools.rehearsal.manifests.sources import load_overlay
from tools.repo import ROOT

CONTAINER = variants.CONTAINER
WHERE = "v2: Deployment zero-downtime-app: spec.template.spec.containers[0]"


def template(tmp_path, path: str, value):
    written = variants.write(ROOT / "overlays/v2", [variants.put(path, value)], tmp_path / "v2")
    return load_overlay(written, "v2").deployment.template


def refusal(tmp_path, path: str, value) -> str:
    with pytest.raises(RehearsalError) as error:
        template(tmp_path, path, value)
    return str(error.value)


def test_a_tcp_socket_probe_on_a_named_port(tmp_path):
    probe = template(tmp_path, f"{CONTAINER}/readinessProbe", {"tcpSocket": {"port": "http"}})
    assert (probe.readiness.action, probe.readiness.port) == ("tcp", 8080)


def test_an_exec_probe(tmp_path):
    command = ["sh", "-c", "test -f /tmp/ready"]
    probe = template(tmp_path, f"{CONTAINER}/readinessProbe", {"exec": {"command": command}})
    assert probe.readiness == Probe(
        "readiness", "exec", command=tuple(command), timeout=1, period=10
    )


def test_a_grpc_probe_is_refused_by_its_field(tmp_path):
    assert refusal(tmp_path, f"{CONTAINER}/readinessProbe", {"grpc": {"port": 8080}}) == (
        f"{WHERE}.readinessProbe.grpc: grpc probes are not rehearsed: use httpGet, tcpSocket"
        " or exec"
    )


@pytest.mark.parametrize(
    "handler, read",
    [
        ({"sleep": {"seconds": 7}}, PreStop("sleep", seconds=7)),
        ({"exec": {"command": ["sleep", "3"]}}, PreStop("exec", command=("sleep", "3"))),
        (
            {"httpGet": {"path": "/prestop", "port": "http"}},
            PreStop("http", port=8080, path="/prestop"),
        ),
    ],
)
def test_every_pre_stop_handler_the_kubelet_runs(tmp_path, handler, read):
    assert template(tmp_path, f"{CONTAINER}/lifecycle/preStop", handler).pre_stop == read


def test_a_tcp_socket_pre_stop_is_refused_as_the_kubelet_fails_it(tmp_path):
    message = refusal(tmp_path, f"{CONTAINER}/lifecycle/preStop", {"tcpSocket": {"port": 8080}})
    assert message == (
        f"{WHERE}.lifecycle.preStop.tcpSocket: not supported as a preStop handler: use sleep,"
        " exec or httpGet"
    )
