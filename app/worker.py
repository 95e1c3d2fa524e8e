"""gunicorn's gthread worker, except that it never closes a kept-alive connection whose next
request has already arrived.

gunicorn closes an idle kept-alive connection once its `keepalive` time is up, in
`ThreadWorker.murder_keepalived` (gunicorn/workers/gthread.py), which runs after the worker's
poll returns and its events are handled. A request that arrives between the poll and that
close is lost: closing a socket with unread data resets the connection, and the client gets no
answer. A client that reuses a pooled connection after about `keepalive` seconds idle hits that
gap; one that does not retry (Python requests: no retries by default) reports an error. The
rehearsal's python-requests clients found it under load (docs/shutdown.md, "Idle
connections"). This worker looks at each expiring connection just before it would close it and
serves the request that is already there instead. What is left is the gap between that look and
the close, a few microseconds, plus the time the FIN takes to reach the client: the race HTTP/1.1
leaves to clients (RFC 9112 section 9.3.1, retrying idempotent requests).

murder_keepalived below is gunicorn 27.0.1's with that one check added; the gunicorn version is
pinned and tests/test_worker.py drives both this method and gunicorn's own against the same
socket state.
"""

import contextlib
import select
import time

from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker


def has_data(sock) -> bool:
    """Readable now: a request (or the client's FIN) is waiting in the socket."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


class ThreadWorker(GunicornThreadWorker):
    def murder_keepalived(self, force=False):
        now = time.monotonic()
        while self.keepalived_conns:
            conn = self.keepalived_conns[0]
            if conn.timeout > now and not force:
                break
            if not force and has_data(conn.sock):
                # Serve it, as the poll would have: takes it off the keep-alive queue.
                self.on_client_socket_readable(conn, conn.sock)
                continue
            self.keepalived_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()
