"""`zdt rehearse`'s options for a moving world (the HPA, the load's shape, the starting count, a
run without a rollout): each bad value is one line naming the option, exit status 2, before any
pod starts."""

import pytest

from tools.rehearsal.cli import EXIT_INVALID, main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hold", "-1"], "rehearsal: error: --hold: value out of range"),
        (["--replicas", "0"], "rehearsal: error: --replicas: value out of range"),
        # metrics-server refuses a resolution under 10 s, or under its request timeout / 0.9.
        (
            ["--metric-resolution", "10"],
            "rehearsal: error: --metric-resolution: value out of range",
        ),
        (["--hpa-sync-period", "0"], "rehearsal: error: --hpa-sync-period: value out of range"),
        (
            ["--from", "overlays/v2", "--to", "overlays/v2"],
            "rehearsal: error: overlays/v2 and overlays/v2 render the same pod template: nothing to"
            " roll out (with --hold SECONDS the run watches the pods that long without a rollout,"
            " e.g. what the HPA does)",
        ),
    ],
    ids=["hold", "replicas", "metric-resolution", "hpa-sync-period", "same-state-without-hold"],
)
def test_a_bad_value_is_one_line_and_status_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == EXIT_INVALID
    assert capsys.readouterr().err.strip() == message


def test_an_unknown_load_shape_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--load-shape", "sawtooth"])
    assert stopped.value.code == 2
    assert "argument --load-shape: invalid choice: 'sawtooth'" in capsys.readouterr().err
