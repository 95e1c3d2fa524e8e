"""The ALB stand-in: an HAProxy process (Debian 12's 2.6.12, installed by
tools/install-debian-package.sh) that answers as an AWS ALB does when a request to a pod fails,
and sends nothing again.

What an ALB does there ("Troubleshoot your Application Load Balancers", HTTP 502/503/504): a
502 when the target refuses the connection, or closes or resets one with a request
outstanding; a 503 when it has no target; a 504 when the target does not answer in time; the
request is never sent again, to the same target or another. How HAProxy 2.6 is made to do the
same (doc/configuration.txt; src/ at v2.6):

- `retries 0`: no new attempt after a failed connection (backend.c `back_handle_st_cer`), on
  this server or another; no `option redispatch`, no `retry-on` (its default,
  `conn-failure`, needs a retry left). A request whose kept-alive connection the pod closes or
  resets before the first byte of its answer is a 502, termination state `SH--`: nothing is
  sent again. Go's transport, in Caddy, which the rehearsal ran before, sends such a GET again
  on a new connection (net/http transport.go `persistConn.shouldRetryRequest`:
  `errServerClosedIdle`, `transportReadFromServerError`, `nothingWrittenError`), and the race
  never reaches the client (tests/test_edge.py, docs/exposure.md);
- one request per client connection (`Connection: close` on every answer): HAProxy answers
  that 502 only to the first request of a client connection; on a later one it closes the
  client's connection without an answer and logs nothing (http_ana.c `abort_keep_alive`, "so
  that the client retries"), which hands the race to the client's own retry: Go's, a
  browser's. An ALB answers 502 whatever came before on the client's connection. The client
  side is not what the pods are judged on; every pod-side failure stays visible this way;
- a refused connection is HAProxy's 503 (`SC--`); an ALB's is a 502, so the status is set to
  502 when a server had been chosen (`http-after-response`); with no server left the 503
  stays, as an ALB's with no target;
- `http-reuse always`: any request may go on any idle connection to its pod, as an ALB's nodes
  share theirs among clients. HAProxy 2.6 sets no idle timeout on a pooled connection
  (mux_h1.c `h1_refresh_timeout`: "no connection timeout (alive back h1c ...)"); it closes
  idle connections beyond recent need every `pool-purge-delay` (server.c
  `srv_cleanup_idle_conns`). At a third of the exposure's upstream idle timeout a connection
  left unused closes on the third purge after its last use: 60 s for the exposures' 60 s, as
  an ALB's idle timeout closes it;
- upstreams: `server-template` slots filled from the A records of one name, asked of the
  rehearsal's resolver (dns.py) once per `refresh` (`timeout resolve`); an address missing
  from the latest answer leaves its slot at once (`hold obsolete 0s`), and an empty answer
  leaves no server (`hold other 0s`: src/resolvers.c reads an answer without records as
  RSLV_STATUS_OTHER). A lookup the resolver does not answer in time changes nothing (`hold
  timeout`, src/server.c `snr_update_srv_status`): with 0 s one slow answer from the rehearsal's
  own loop, busy on a loaded machine, took every server out at once and the edge answered 503
  (`SC--`, `<NOSRV>`) with pods ready behind it, which no ALB does while its controller is slow;
- a log line (JSON, on its stdout) for each request that ended in error (`option
  dontlog-normal`), with the status and the termination state that says why (section 8.5),
  read back by `errors()`.
"""

import asyncio
import json
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.errors import RehearsalError

# server-template slots: more than the pods any rehearsal routes to at once.
SLOTS = 32
INSTALL = "tools/install-debian-package.sh"


@dataclass(frozen=True)
class ProxySettings:
    upstream_name: str  # the DNS name whose A records are the upstreams
    upstream_port: int
    resolver: str  # "host:port" of the UDP resolver
    refresh: float  # seconds between lookups
    upstream_idle_timeout: float  # the pool's idle keep-alive to the pods
    client_idle_timeout: float  # a client's idle keep-alive connection to the proxy
    request_timeout: float | None  # the route's whole-request timeout
    path_prefix: str = "/"


@dataclass(frozen=True)
class ProxyError:
    """One request the proxy failed itself (a 502/503/504), from its log."""

    at: float  # wall-clock seconds
    status: int
    state: str  # HAProxy's termination state, e.g. "SH--" (section 8.5)
    message: str
    upstream: str | None  # "address:port" of the pod it had chosen, None when none


# The first two characters of a termination state (doc/configuration.txt, section 8.5).
STATES = {
    "SC": "the connection to the pod was refused or failed",
    "SH": "the pod closed or reset the connection before any response header",
    "sH": "the pod sent no response header in time",
    "SD": "the pod closed or reset the connection while sending its answer",
    "sD": "the pod stopped sending its answer",
    "PR": "refused by the proxy's own rules",
}


def find_haproxy() -> str:
    for found in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if found and Path(found).exists():
            return found
    raise RehearsalError(f"haproxy: not found (`make demo` and `make test` install it: {INSTALL})")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ms(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


# One JSON object per line (nothing a client sent is in it, so nothing to escape): when the
# line was written (the request's end), the status, the termination state, the server slot it
# chose and that pod's address ("<NOSRV>" and "-:-" when none).
LOG_FORMAT = '{"at":%[date(0,ms)],"status":%ST,"state":"%tsc","server":"%s","address":"%si:%sp"}'


def config(settings: ProxySettings, listen: str) -> str:
    prefix = settings.path_prefix.rstrip("/")
    route = f"path_beg {prefix}/" + (f" || path {prefix}" if prefix else "")
    request_timeout = settings.request_timeout or settings.upstream_idle_timeout
    host, port = settings.resolver.rsplit(":", 1)
    name = settings.upstream_name.rstrip(".")
    return f"""\
global
    nbthread 1
    maxconn 4096
    log stdout format raw local0 info
    # a soft stop (stop()) waits for the requests under way, this long at most
    hard-stop-after 5s

defaults
    mode http
    log global
    option dontlog-normal
    log-format '{LOG_FORMAT}'
    timeout connect 5s
    timeout client {ms(settings.client_idle_timeout)}
    timeout http-request 10s
    timeout server {ms(request_timeout)}
    retries 0

resolvers rehearsal
    nameserver edge {host}:{port}
    accepted_payload_size 1232
    resolve_retries 1
    timeout resolve {ms(settings.refresh)}
    timeout retry {ms(settings.refresh)}
    hold valid {ms(settings.refresh)}
    hold obsolete 0s
    hold nx 0s
    hold other 0s
    hold refused 0s
    hold timeout 1h

frontend edge
    bind {listen}
    http-request deny deny_status 404 unless {{ {route} }}
    http-after-response set-header Connection close
    default_backend pods

backend pods
    balance roundrobin
    http-reuse always
    http-after-response set-status 502 if {{ status 503 }} {{ srv_id -m found }}
    server-template pod 1-{SLOTS} {name}:{settings.upstream_port} resolvers rehearsal \
resolve-prefer ipv4 init-addr none pool-purge-delay {ms(settings.upstream_idle_timeout / 3)}
"""


class HAProxy:
    def __init__(self, settings: ProxySettings, log_dir: Path, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.host = host
        self.port = free_port(host)
        self.log_dir = log_dir
        self.log = log_dir / "haproxy.log"
        self.process: subprocess.Popen | None = None

    @property
    def entry_point(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        path = self.log_dir / "haproxy.cfg"
        path.write_text(config(self.settings, self.entry_point))
        self.process = subprocess.Popen(
            [find_haproxy(), "-f", str(path), "-db"],
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"),
            stderr=(self.log_dir / "haproxy.err").open("w"),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process.poll() is not None:
                raise RehearsalError(
                    f"haproxy exited ({self.process.returncode}) at start: "
                    f"{self.log_dir}/haproxy.err"
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RehearsalError(f"haproxy did not listen on {self.entry_point} within {timeout:g}s")

    async def stop(self) -> None:
        """A soft stop (SIGUSR1): the requests under way end, and each one's log line is
        written, before HAProxy exits (SIGTERM would lose the last ones)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGUSR1)
        try:
            await asyncio.to_thread(self.process.wait, 6)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    def errors(self) -> list[ProxyError]:
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            start = line.find("{")
            try:
                entry = json.loads(line[start:]) if start >= 0 else None
            except json.JSONDecodeError:
                continue
            if not isinstance(entry, dict):
                continue
            status, state = entry.get("status"), str(entry.get("state", ""))
            # Only what HAProxy answered itself: a pod's own 5xx ends as "----".
            if not isinstance(status, int) or status < 500 or state.startswith("-"):
                continue
            server, address = entry.get("server"), str(entry.get("address", ""))
            upstream = None if server == "<NOSRV>" or address.startswith("-") else address
            what = STATES.get(state[:2], "")
            message = f"{state} {server} {address}" + (f": {what}" if what else "")
            found.append(ProxyError(float(entry["at"]) / 1000, status, state, message, upstream))
        return found
