"""gunicorn configuration: `python -m app` and the image load this module in the master."""

import os

from app import multiproc
from app.draining import DRAINING, drain_on_sigterm, reset_in_worker
from app.quiescence import LEAVING
from app.settings import Settings

settings = Settings.from_env(os.environ)
# Before any worker is forked, so that every worker counts into the same directory.
metrics_dir = multiproc.prepare(os.environ, os.getpid())

bind = f"{settings.host}:{settings.port}"
workers = settings.workers
# Threads give keep-alive support, which clients and the Service's connection reuse rely on.
# gunicorn's gthread worker, except that it serves a request that arrived on an idle
# connection just as its keep-alive time ran out instead of dropping it (app/worker.py).
worker_class = "app.worker.ThreadWorker"
threads = 4
# Idle kept-alive connections stay open this long: longer than any client or proxy in front
# keeps one idle before reusing it, so the app never closes a connection one of them is about
# to reuse (docs/shutdown.md, "Idle connections").
keepalive = settings.keepalive
graceful_timeout = settings.graceful_timeout
timeout = 30
loglevel = settings.log_level
accesslog = None  # the app writes one structured line per request itself
errorlog = "-"
proc_name = "app"
# gunicorn's control socket lives in $HOME, which is read-only in the image and shared by
# every server on a machine; nothing here uses it.
control_socket_disable = True


def when_ready(server):
    drain_on_sigterm(server, settings.drain_seconds)


def post_fork(server, worker):
    reset_in_worker()


def child_exit(server, worker):
    multiproc.mark_process_dead(worker.pid)


def on_exit(server):
    metrics_dir.remove()


def pre_request(worker, req):
    # While draining, and while the preStop hook waits for traffic to leave, answer with
    # "Connection: close" so keep-alive clients reconnect and the Service sends their next
    # request to a pod that is not going away.
    if DRAINING.is_set() or LEAVING.is_set():
        req.force_close()
