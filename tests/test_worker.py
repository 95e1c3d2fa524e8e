"""The gunicorn worker the app runs (app/worker.py): an idle kept-alive connection whose next
request has already arrived when its keep-alive time is up is served, where gunicorn's own
gthread worker closes it and the request is lost.

Both workers are driven in this process at the exact moment of the race: a connection past its
keep-alive time, its request waiting in the socket, and the worker's idle sweep
(murder_keepalived) running before its next poll would have seen the request.
"""

import os
import selectors
import socket
import time
from functools import partial

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from app.worker import ThreadWorker

REQUEST = b"GET /status HTTP/1.1\r\nHost: pod\r\n\r\n"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def tcp():
    """A connected pair of sockets on loopback: (the client's, the server's, the listener)."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    yield client, server, listener
    for sock in (client, server, listener):
        sock.close()


def worker_of(cls):
    cfg = Config()
    cfg.set("threads", 1)
    cfg.set("keepalive", 5)
    worker = cls(1, os.getppid(), [], None, 30, cfg, Logger(cfg))
    worker.tpool = worker.get_thread_pool()
    worker.poller = selectors.DefaultSelector()
    worker.method_queue.init()
    worker.wsgi = hello
    return worker


def kept_alive(worker, server: socket.socket, listener: socket.socket, idle_for: float) -> TConn:
    """`server` as a kept-alive connection of `worker`, idle for `idle_for` s past its
    keep-alive time (negative: still within it), as finish_request leaves one."""
    conn = TConn(worker.cfg, server, server.getpeername(), listener.getsockname())
    conn.timeout = time.monotonic() - idle_for
    worker.keepalived_conns.append(conn)
    worker.poller.register(
        conn.sock, selectors.EVENT_READ, partial(worker.on_client_socket_readable, conn)
    )
    worker.nr_conns += 1
    return conn


def arrived(sock: socket.socket) -> None:
    with selectors.DefaultSelector() as waiting:
        waiting.register(sock, selectors.EVENT_READ)
        assert waiting.select(timeout=5), "the request never reached the server socket"


def answer(client: socket.socket) -> bytes:
    client.settimeout(5)
    try:
        return client.recv(65536)
    except ConnectionResetError:
        return b"reset"


@pytest.mark.parametrize(
    ("worker_class", "served"), [(ThreadWorker, True), (GunicornThreadWorker, False)]
)
def test_a_request_that_arrived_as_the_connection_expired_is_served_not_dropped(
    tcp, worker_class, served
):
    client, server, listener = tcp
    worker = worker_of(worker_class)
    kept_alive(worker, server, listener, idle_for=0.01)
    client.sendall(REQUEST)
    arrived(server)
    worker.murder_keepalived()
    worker.tpool.shutdown(wait=True)
    reply = answer(client)
    if served:
        assert reply.startswith(b"HTTP/1.1 200 OK") and b"\r\nok\r\n" in reply
        assert not worker.keepalived_conns and worker.nr_conns == 1  # in the thread pool
    else:  # gunicorn's own closes it with the request unread: the client gets a reset
        assert reply in (b"", b"reset")
        assert worker.nr_conns == 0


def test_an_idle_connection_past_its_time_is_still_closed(tcp):
    client, server, listener = tcp
    worker = worker_of(ThreadWorker)
    kept_alive(worker, server, listener, idle_for=0.01)
    worker.murder_keepalived()
    worker.tpool.shutdown(wait=True)
    assert answer(client) == b""  # a FIN: the client's pool sees it dropped
    assert not worker.keepalived_conns and worker.nr_conns == 0


def test_a_connection_within_its_keep_alive_time_is_left_alone(tcp):
    client, server, listener = tcp
    worker = worker_of(ThreadWorker)
    conn = kept_alive(worker, server, listener, idle_for=-5)
    client.sendall(REQUEST)
    arrived(server)
    worker.murder_keepalived()  # the poll serves it, not the sweep
    worker.tpool.shutdown(wait=True)
    assert list(worker.keepalived_conns) == [conn]
