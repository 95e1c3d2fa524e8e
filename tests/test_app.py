"""Every endpoint through Flask's test client, errors included."""

import json

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.draining import DrainFlag
from app.settings import Settings, SettingsError


@pytest.fixture
def draining():
    return DrainFlag()


@pytest.fixture
def client(draining):
    app = create_app(Settings(version="v9"), draining=draining)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    return app.test_client()


def test_status_names_the_version(client):
    response = client.get("/status")
    assert (response.status_code, response.text) == (200, "OK v9\n")
    assert response.headers["X-App-Version"] == "v9"
    assert response.headers["X-Worker-Pid"].isdigit()
    assert response.mimetype == "text/plain"


def test_status_delay_is_bounded(client):
    assert client.get("/status?delay=0.01").status_code == 200
    for bad in ["-1", "31", "soon", "nan"]:
        response = client.get(f"/status?delay={bad}")
        assert response.status_code == 400
        assert "delay must be a number from 0 to 30" in response.text


def test_ready_follows_the_drain_flag(client, draining):
    assert (client.get("/ready").status_code, client.get("/ready").text) == (200, "ready\n")
    draining.set()
    response = client.get("/ready")
    assert (response.status_code, response.text) == (503, "draining\n")
    assert client.get("/status").status_code == 200


def test_healthz_stays_200_while_draining(client, draining):
    assert client.get("/healthz").text == "ok\n"
    draining.set()
    assert client.get("/healthz").status_code == 200


def test_unknown_path_and_method_get_short_answers(client):
    missing = client.get("/nope")
    assert (missing.status_code, missing.text) == (404, "404 Not Found\n")
    wrong_method = client.post("/status")
    assert (wrong_method.status_code, wrong_method.text) == (405, "405 Method Not Allowed\n")
    assert "GET" in wrong_method.headers["Allow"]


def test_unhandled_error_is_a_short_500_and_logged(capsys, client):
    response = client.get("/boom")
    assert (response.status_code, response.text) == (500, "500 Internal Server Error\n")
    assert "secret" not in response.text
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    error = next(line for line in logged if line["level"] == "error")
    assert "RuntimeError: secret internals" in error["error"]
    access = next(line for line in logged if line.get("path") == "/boom")
    assert access["status"] == 500


def test_access_line_fields(capsys, client):
    client.get("/status")
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["method"] == "GET" and line["path"] == "/status" and line["status"] == 200
    assert line["version"] == "v9" and line["duration_ms"] >= 0
    assert {"time", "pod", "worker_pid"} <= line.keys()


def test_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.port, settings.workers, settings.version) == (8080, 2, "dev")
    assert (settings.drain_seconds, settings.graceful_timeout, settings.keepalive) == (5.0, 20, 75)


def test_settings_from_environment():
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "APP_VERSION": "1.2.3",
            "WEB_CONCURRENCY": "4",
            "DRAIN_SECONDS": "0.5",
            "GRACEFUL_TIMEOUT": "10",
            "KEEPALIVE_SECONDS": "65",
            "HOST": "127.0.0.9",
            "LOG_LEVEL": "DEBUG",
        }
    )
    assert settings == Settings(
        "127.0.0.9", 9000, "1.2.3", 4, 0.5, graceful_timeout=10, keepalive=65, log_level="debug"
    )


def test_the_prestop_hooks_settings_must_fit_under_its_maximum():
    settings = Settings.from_env({"PRESTOP_MIN_SECONDS": "1", "PRESTOP_QUIET_SECONDS": "0.5"})
    assert (settings.prestop_min_seconds, settings.prestop_quiet_seconds) == (1, 0.5)
    assert settings.prestop_max_seconds == 90
    for name in ("PRESTOP_MIN_SECONDS", "PRESTOP_QUIET_SECONDS"):
        with pytest.raises(SettingsError, match=f"^{name} must not exceed PRESTOP_MAX_SECONDS"):
            Settings.from_env({name: "11", "PRESTOP_MAX_SECONDS": "10"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "abc", "PORT must be an integer, got 'abc'"),
        ("PORT", "0", "PORT must be between 1 and 65535, got 0"),
        ("DRAIN_SECONDS", "-2", "DRAIN_SECONDS must be between 0 and 3600 seconds, got -2"),
        ("DRAIN_SECONDS", "x", "DRAIN_SECONDS must be a number of seconds, got 'x'"),
        ("GRACEFUL_TIMEOUT", "1.5", "GRACEFUL_TIMEOUT must be an integer, got '1.5'"),
        ("WEB_CONCURRENCY", "100", "WEB_CONCURRENCY must be between 1 and 64, got 100"),
        ("KEEPALIVE_SECONDS", "0", "KEEPALIVE_SECONDS must be between 1 and 3600, got 0"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of debug, info, warning, error, got 'loud'"),
    ],
)
def test_settings_errors_name_the_variable(name, value, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({name: value})
    assert str(error.value) == message


def scraped_requests(client) -> dict[tuple[str, str, str], float]:
    """http_requests_total by (method, path, status), from the app's own /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return {
        (s.labels["method"], s.labels["path"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == "http_requests_total"
    }


def test_metrics_count_requests_by_route_and_status(client):
    assert scraped_requests(client) == {}
    client.get("/status")
    client.get("/status?delay=soon")
    client.get("/nope")
    client.get("/nope/again")
    client.post("/status")
    client.open("/status", method="BREW")
    client.get("/boom")
    for probe in ["/ready", "/healthz", "/metrics"]:
        client.get(probe)
    # Route templates, or one constant for what no route matched; never the raw URL.
    assert scraped_requests(client) == {
        ("GET", "/status", "200"): 1.0,
        ("GET", "/status", "400"): 1.0,
        ("GET", "unmatched", "404"): 2.0,
        ("POST", "unmatched", "405"): 1.0,
        ("other", "unmatched", "405"): 1.0,
        ("GET", "/boom", "500"): 1.0,
    }


def test_metrics_histogram_counts_what_the_counter_counts(client):
    for path in ["/status", "/status", "/nope", "/ready"]:
        client.get(path)
    samples = [
        s
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    ]
    counts = {
        s.labels["status"]: s.value
        for s in samples
        if s.name == "http_request_duration_seconds_count"
    }
    assert counts == {"200": 2.0, "404": 1.0}
    infinite = [s for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert sum(s.value for s in infinite) == 3.0
