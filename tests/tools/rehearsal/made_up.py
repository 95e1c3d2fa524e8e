"""A Result of a run that never ran, for the tests of what is derived from one: overlays/v1 ->
overlays/v2 as rendered, no request, event or pod, unless the fields given say otherwise."""

from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.repo import ROOT


def made_up_result(**fields) -> Result:
    v1 = load_overlay(ROOT / "overlays/v1", "overlays/v1")
    v2 = load_overlay(ROOT / "overlays/v2", "overlays/v2")
    defaults = {
        "name": "ours",
        "source": v1,
        "target": v2,
        "options": Options(progress=False),
        "runtime": "process",
        "records": [],
        "events": [],
        "pods": [],
        "capacity": None,
        "rate": 100.0,
        "load_started": 0.0,
        "steady_started": 0.0,
        "rollout_started": 0.0,
        "rollout_completed": None,
        "rollout_failed": "",
        "settled": 0.0,
        "startup_seconds": 1.0,
        "final_versions": [],
        "proxy_no_endpoint": 0,
        "proxy_backend_failed": 0,
    }
    return Result(**(defaults | fields))
