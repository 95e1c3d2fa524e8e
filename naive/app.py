"""A Flask app with a module-level readiness flag and its own SIGTERM handler."""

import os
import signal
import time

from flask import Flask, request

VERSION = os.environ.get("APP_VERSION", "dev")
ready = True


def on_sigterm(signum, frame):
    global ready
    ready = False


signal.signal(signal.SIGTERM, on_sigterm)

app = Flask(__name__)


@app.after_request
def add_headers(response):
    response.headers["X-App-Version"] = VERSION
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/status")
def status():
    time.sleep(float(request.args.get("delay", 0)))
    return f"OK {VERSION}\n"


@app.get("/ready")
def ready_probe():
    return ("ready\n", 200) if ready else ("not ready\n", 500)


@app.get("/healthz")
def healthz():
    return "ok\n"
