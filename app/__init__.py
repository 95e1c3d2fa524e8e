"""The service: a Flask application factory."""

import os
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from app.access_log import log_request, make_logger
from app.draining import DRAINING, DrainFlag
from app.multiproc import ENV as MULTIPROC_ENV
from app.quiescence import (
    ARRIVALS,
    LEAVING,
    QUIET_HOOK_PATH,
    Arrivals,
    HookTiming,
    counts_as_traffic,
    wait_until_quiet,
)
from app.settings import Settings

MAX_DELAY_SECONDS = 30.0


def text(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def create_app(
    settings: Settings | None = None,
    draining: DrainFlag = DRAINING,
    arrivals: Arrivals = ARRIVALS,
    leaving: DrainFlag = LEAVING,
) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    pod = os.environ.get("HOSTNAME", "")
    logger = make_logger("app", settings.log_level)
    # Imported here, in the worker, after the fork: prometheus_client chooses its multiprocess
    # mode when first imported, and this package is imported in the gunicorn master before
    # gunicorn_conf sets PROMETHEUS_MULTIPROC_DIR (app/multiproc.py).
    from app.metrics import RequestMetrics

    metrics = RequestMetrics(os.environ.get(MULTIPROC_ENV) or None)
    app = Flask(__name__)

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()
        if counts_as_traffic(request.path):
            arrivals.mark(time.monotonic())

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["X-App-Version"] = settings.version
        response.headers["X-Worker-Pid"] = str(os.getpid())
        started = g.get("started", time.perf_counter())
        metrics.observe(
            method=request.method,
            route=request.url_rule.rule if request.url_rule else None,
            path=request.path,
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        log_request(
            logger,
            method=request.method,
            path=request.path,
            status=response.status_code,
            started=started,
            version=settings.version,
            pod=pod,
            worker_pid=os.getpid(),
        )
        return response

    @app.get("/status")
    def status():
        raw_delay = request.args.get("delay")
        if raw_delay is not None:
            try:
                delay = float(raw_delay)
            except ValueError:
                delay = -1.0
            if not 0 <= delay <= MAX_DELAY_SECONDS:
                return text(f"delay must be a number from 0 to {MAX_DELAY_SECONDS:g}", 400)
            time.sleep(delay)
        return text(f"OK {settings.version}")

    @app.get("/ready")
    def ready():
        return text("draining", 503) if draining.is_set() else text("ready")

    @app.get(QUIET_HOOK_PATH)
    def prestop():
        # The preStop hook (app/quiescence.py): answers once traffic has left the pod.
        leaving.set()
        timing = HookTiming(
            settings.prestop_min_seconds,
            settings.prestop_quiet_seconds,
            settings.prestop_max_seconds,
            settings.prestop_min_service_seconds,
        )
        quiet = wait_until_quiet(arrivals, timing)
        logger.info("preStop: %s", quiet.describe())
        return text(quiet.describe())

    @app.get("/healthz")
    def healthz():
        return text("ok")

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.exposition(), content_type=metrics.content_type)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = text(f"{error.code} {error.name}", error.code or 500)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unhandled_error(error: Exception):
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return text("500 Internal Server Error", 500)

    return app
