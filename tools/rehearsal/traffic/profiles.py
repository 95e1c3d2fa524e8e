"""The client models of the load, each named after the real client it behaves like, and the
mixes of them a rehearsal runs (`--traffic`).

A model says how a client connects, when it sends, and what it does when a kept-alive
connection fails; `tools/rehearsal/traffic/load.py` runs them. Each model names the source its
behaviour was read from.

How the rehearsal's total rate (`LoadProcess.set_rate`: a share of the measured capacity) is
shared: think-time clients send at the pace their think time gives (clients / mean think time,
whatever the rate); the rest of the rate is split evenly over the clients of the paced and
open-loop models. When measuring capacity (closed loop) the paced clients send as fast as they
can, the think-time clients keep thinking, and open-loop arrivals pause (an open loop has no
"as fast as it can").
"""

from dataclasses import dataclass

from tools.rehearsal.errors import RehearsalError

# When a client sends.
PACED = "paced"  # evenly spaced, at its share of the rate (a closed loop when measuring)
THINK = "think"  # one request, then a think time, then the next
OPEN = "open"  # Poisson arrivals with bursts, never waiting for earlier answers


@dataclass(frozen=True)
class Bursts:
    """A Markov-modulated Poisson process: calm and burst periods of exponentially distributed
    length; during a burst arrivals come `factor` times as fast. The mean rate stays the
    client's share: the calm rate is lowered to make room for the bursts."""

    factor: float = 5.0
    mean_burst_seconds: float = 0.3
    mean_calm_seconds: float = 3.0

    @property
    def burst_fraction(self) -> float:
        return self.mean_burst_seconds / (self.mean_burst_seconds + self.mean_calm_seconds)

    def calm_rate(self, mean_rate: float) -> float:
        return mean_rate / (1 + self.burst_fraction * (self.factor - 1))


@dataclass(frozen=True)
class ClientModel:
    name: str
    arrivals: str  # PACED, THINK or OPEN
    keep_alive: bool  # reuses its connection until the server says `Connection: close`
    # Before reusing an idle connection: a zero-timeout readability poll of its socket;
    # readable means the server closed (FIN) or reset it, so it is dropped for a new one.
    checks_dropped: bool = False
    # Once, on a new connection, when a REUSED connection failed before any byte of an answer
    # (every request here is an idempotent GET).
    retries_reused: bool = False
    idle_timeout: float | None = None  # the client closes a connection idle this long, s
    think_seconds: tuple[float, float] = (0.0, 0.0)  # THINK: uniform between these, s
    bursts: Bursts | None = None  # OPEN
    source: str = ""  # what its behaviour was read from

    @property
    def mean_think(self) -> float:
        return sum(self.think_seconds) / 2


# About half of the reuses come just before 5 s idle, half just after. That straddles the end of
# a terminating pod's drain (DRAIN_SECONDS 5: a connection last used before SIGTERM is reused
# as the graceful stop begins), and it straddled the app's own idle close when its keep-alive
# was 5 s: there these clients lost requests (docs/shutdown.md, "Idle connections").
THINK_AROUND_FIVE_SECONDS = (4.5, 5.5)

WGET = ClientModel(
    "wget",
    PACED,
    keep_alive=False,
    source="busybox networking/wget.c (one connection per fetch, `Connection: close`) in the "
    "exercise's `while true; do wget -qO- ...; done` loop; kubernetes "
    "test/e2e/framework/network/utils.go httpGetNoConnectionPoolTimeout (the e2e tests poll a "
    "Service with DisableKeepAlives)",
)
# The load generator of the Kubernetes documentation's HPA walkthrough (tasks/run-application/
# horizontal-pod-autoscale-walkthrough): `while sleep 0.01; do wget -q -O- http://php-apache;
# done`: one request at a time on a new connection, 10 ms apart, whatever the answers take.
WGET_LOOP = ClientModel(
    "wget-loop",
    THINK,
    keep_alive=False,
    think_seconds=(0.01, 0.01),
    source="the HPA walkthrough's `while sleep 0.01; do wget -q -O- http://php-apache; done` "
    "(busybox networking/wget.c: one connection per fetch); a failed fetch is not retried",
)
KEEP_ALIVE = ClientModel(
    "keep-alive",
    PACED,
    keep_alive=True,
    source="the rehearsal's original paced client: one connection, reused every request at its "
    "share of the rate, no check before reuse, no retry",
)
PYTHON_REQUESTS = ClientModel(
    "python-requests",
    THINK,
    keep_alive=True,
    checks_dropped=True,
    think_seconds=THINK_AROUND_FIVE_SECONDS,
    source="requests 2.x adapters.py HTTPAdapter (DEFAULT_RETRIES = 0 -> Retry(0, read=False): "
    "no retry); urllib3 2.x connectionpool.py HTTPConnectionPool._get_conn (is_connection_dropped "
    "-> close and reconnect), connection.py HTTPConnection.is_connected (not "
    "wait_for_read(sock, timeout=0.0)), util/wait.py (poll); no client-side idle timeout",
)
GO_NET_HTTP = ClientModel(
    "go-net-http",
    THINK,
    keep_alive=True,
    checks_dropped=True,
    retries_reused=True,
    idle_timeout=90.0,
    think_seconds=THINK_AROUND_FIVE_SECONDS,
    source="go src/net/http/transport.go: DefaultTransport IdleConnTimeout 90 s; "
    "persistConn.readLoop takes a connection the server closed while idle out of the pool "
    "(readLoopPeekFailLocked, errServerClosedIdle); Transport.roundTrip retries when "
    "persistConn.shouldRetryRequest: only on a reused connection (isReused), when nothing was "
    "written (nothingWrittenError) or the first response byte failed (errServerClosedIdle, "
    "transportReadFromServerError), for a replayable request; the retry takes a new connection, "
    "which is never retried",
)
OPEN_LOOP = ClientModel(
    "open-loop",
    OPEN,
    keep_alive=False,
    bursts=Bursts(),
    source="an open system of independent users (Schroeder, Wierman, Harchol-Balter, 'Open "
    "versus closed: a cautionary tale', NSDI 2006): Poisson arrivals, Markov-modulated for "
    "bursts, each on a new connection, never waiting for earlier answers; what a load balancer "
    "in front of many users sends",
)

MODELS = {
    model.name: model
    for model in (WGET, WGET_LOOP, KEEP_ALIVE, PYTHON_REQUESTS, GO_NET_HTTP, OPEN_LOOP)
}

# Clients per model.
FRIENDLY = {WGET.name: 8, KEEP_ALIVE.name: 8}  # the rehearsal before the hostile world
HOSTILE = {
    WGET.name: 8,
    KEEP_ALIVE.name: 8,
    PYTHON_REQUESTS.name: 50,
    GO_NET_HTTP.name: 50,
    OPEN_LOOP.name: 6,
}
MIXES = {"hostile": HOSTILE, "friendly": FRIENDLY}
MAX_CLIENTS = 1000  # per model


def parse_mix(spec: str) -> dict[str, int]:
    """`--traffic`: comma-separated items applied in order to an empty mix; an item is a named
    mix (hostile, friendly) or MODEL=CLIENTS. `hostile,open-loop=0` is the hostile mix without
    open-loop arrivals."""
    mix: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, count = item.partition("=")
        if not sep:
            if name not in MIXES:
                raise RehearsalError(
                    f"--traffic: no mix {name!r}: choose one of {', '.join(MIXES)}, or MODEL=N"
                )
            mix.update(MIXES[name])
            continue
        if name not in MODELS:
            raise RehearsalError(
                f"--traffic: no client model {name!r}: choose from {', '.join(MODELS)}"
            )
        try:
            mix[name] = int(count)
        except ValueError:
            raise RehearsalError(
                f"--traffic: {item!r}: the number of clients is not an integer"
            ) from None
    check_mix(mix)
    return mix


def check_mix(mix: dict[str, int], option: str = "--traffic") -> None:
    for name, count in mix.items():
        if name not in MODELS:
            raise RehearsalError(f"{option}: no client model {name!r}")
        if not 0 <= count <= MAX_CLIENTS:
            raise RehearsalError(f"{option}: {name}={count}: from 0 to {MAX_CLIENTS} clients")
    if not any(mix.values()):
        raise RehearsalError(f"{option}: no clients")


def share(mix: dict[str, int], parts: int) -> dict[str, int]:
    """One of `parts` equal shares of a mix's clients, at least one client of each model it
    has: for rehearsals that run side by side and together load the machine as one does."""
    return {name: max(1, round(count / parts)) for name, count in mix.items() if count}


def think_rate(mix: dict[str, int]) -> float:
    """Requests/s the think-time clients send by themselves (answers take no time)."""
    return sum(
        count / MODELS[name].mean_think
        for name, count in mix.items()
        if MODELS[name].arrivals == THINK
    )


def rate_driven(mix: dict[str, int]) -> int:
    """Clients that share what the think-time clients leave of the rate."""
    return sum(count for name, count in mix.items() if MODELS[name].arrivals != THINK)
