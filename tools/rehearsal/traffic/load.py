"""Load through the Service, from its own process (`python -m tools.rehearsal.traffic.load`),
so that it has its own interpreter and can use the other core.

The clients are the models of tools/rehearsal/traffic/profiles.py (wget, python-requests,
go-net-http, open-loop arrivals, paced keep-alive), each pinned to one of the Service's entry
points (a node's proxy). Every request is recorded: start time, latency, outcome (`ok`,
`http <status>` for any other answer, or how the connection failed: refused, reset before
answer, cut mid-response, timeout), version (X-App-Version), client model, the client's port
(to find the connection in the Service's records), and whether it reused a connection, found
it dropped, or was retried. Load is loopback-only and bounded in request count and duration.

The rehearsal drives it over stdin: `closed SECONDS` (measure capacity, answered `capacity R`),
`rate R` (the total rate from now on), `stop` (answered `done` once the records are written).
"""

import asyncio
import contextlib
import json
import os
import random
import select
import socket
import sys
import time
from dataclasses import asdict, astuple, dataclass, field, replace
from pathlib import Path

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.conntrack import NewConnections
from tools.rehearsal.traffic import httpclient, profiles
from tools.rehearsal.traffic.outcomes import OK, RequestRecord, classify
from tools.rehearsal.traffic.profiles import OPEN, PACED, THINK, ClientModel
from tools.repo import ROOT

# Open-loop arrivals wait for one of these many connections (file descriptors are finite);
# their latency counts from the arrival, so a queue here still shows.
MAX_OPEN_LOOP_CONNECTIONS = 2048


@dataclass(frozen=True)
class LoadConfig:
    targets: tuple[str, ...]  # "host:port" of each entry point (a node's Service proxy)
    clients: dict[str, int] = field(default_factory=lambda: dict(profiles.HOSTILE))
    path: str = "/status"
    expect_status: int = 200  # the answer that counts as ok
    request_timeout: float = 5.0
    max_requests: int = 500_000
    max_seconds: float = 600.0
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ValueError("load needs at least one target")
        for target in self.targets:
            # A target in a network namespace ("host:port@/proc/PID/ns/net") is one the
            # rehearsal made: its address exists only there.
            if not target.startswith("127.") and "@/proc/" not in target:
                raise ValueError(
                    f"load goes to loopback or the run's own namespaces only, got {target!r}"
                )
        profiles.check_mix(self.clients, "clients")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    netns: str | None = None  # the namespace the clients connect from (a node's)
    node: int = 0  # its index among the load's targets

    @classmethod
    def parse(cls, text: str) -> "Target":
        """ "host:port", or "host:port@" and the file of the clients' network namespace."""
        address, _, netns = text.partition("@")
        host, _, port = address.rpartition(":")
        return cls(host, int(port), netns or None)


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    answered: int = 0  # requests answered on it: a reuse when > 0
    idle_since: float = 0.0

    @property
    def port(self) -> int:
        """The client's local port: the key to this connection in the Service's records."""
        return self.writer.get_extra_info("sockname")[1]

    def idle(self) -> None:
        """Between requests the event loop stops reading the socket, so that the server's close
        stays in the kernel for `dropped` to see, as it does for a blocking client."""
        self.writer.transport.pause_reading()
        self.idle_since = time.monotonic()

    def dropped(self) -> bool:
        """urllib3's check before reusing a pooled connection (connection.py
        HTTPConnection.is_connected: `not wait_for_read(sock, timeout=0.0)`): an idle HTTP
        connection that is readable has been closed (FIN) or reset by the server."""
        if self.reader.at_eof() or self.writer.is_closing():  # the loop already read the close
            return True
        poller = select.poll()
        poller.register(self.writer.get_extra_info("socket").fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def send(self, request: bytes) -> None:
        self.writer.transport.resume_reading()
        self.writer.write(request)


# The clients' own loopback address. Their ports are bound before connecting (below), from the
# same range as any server's port picked with bind(0); on an address of their own they never
# take a port a test server on 127.0.0.1 is about to bind.
CLIENT_ADDRESS = "127.0.1.1"


_sockets: netns.Sockets | None = None  # made on first use, in the load's own thread


def bound_socket(target: Target) -> tuple[socket.socket, int]:
    """A client socket with its port chosen before it connects, so that even a connection the
    Service resets during the handshake can be found in the Service's records; in the target's
    namespace, if it has one (on the node's own address there)."""
    global _sockets
    if target.netns is None:
        sock = netns.socket_in(None)
    else:
        _sockets = _sockets or netns.Sockets()
        sock = _sockets.make(target.netns)
    sock.bind(("0.0.0.0" if target.netns else CLIENT_ADDRESS, 0))
    return sock, sock.getsockname()[1]


async def open_connection(sock: socket.socket, target: Target) -> Connection:
    try:
        await asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
    except BaseException:
        sock.close()
        raise
    return Connection(*await asyncio.open_connection(sock=sock))


def close(connection: Connection | None) -> None:
    if connection is not None:
        connection.writer.close()


class Pace:
    """What the clients do now: idle, closed loop (as fast as they can) or a fixed total rate."""

    def __init__(self) -> None:
        self.mode = "idle"
        self.rate = 0.0
        self.changed = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def set(self, mode: str, rate: float = 0.0) -> None:
        self.mode, self.rate = mode, rate
        if mode == "idle":
            self.idle.set()
        else:
            self.idle.clear()
        self.changed.set()
        self.changed = asyncio.Event()


class Generator:
    def __init__(self, config: LoadConfig, models: dict[str, ClientModel] | None = None) -> None:
        self.config = config
        self.models = models or profiles.MODELS
        self.targets = [
            replace(Target.parse(target), node=index) for index, target in enumerate(config.targets)
        ]
        # Failed requests through the kernel's NAT whose pod is still to be looked up in their
        # node's conntrack table: (record index, target, client port).
        self.unattributed: list[tuple[int, Target, int]] = []
        self.new_connections = {
            target.netns: NewConnections(target.netns) for target in self.targets if target.netns
        }
        self.ok = self.failed = 0
        self.pace = Pace()
        self.records: list[RequestRecord] = []
        self.stopping = False
        self.deadline = time.monotonic() + config.max_seconds
        self.rng = random.Random(config.seed)
        self.open_slots = asyncio.Semaphore(MAX_OPEN_LOOP_CONNECTIONS)
        self.arrivals: set[asyncio.Task] = set()  # open-loop requests in flight

    def share(self) -> float:
        """The rate of each paced or open-loop client: what the think-time clients leave of the
        total rate, split evenly (traffic/profiles.py)."""
        mix = {name: n for name, n in self.config.clients.items() if n}
        left = self.pace.rate - profiles.think_rate(mix)
        return max(0.0, left) / max(1, profiles.rate_driven(mix))

    def record(self, started: float, outcome: str, version: str, model: str, **details) -> None:
        self.records.append(
            RequestRecord(started, time.monotonic() - started, outcome, version, model, **details)
        )
        if outcome == OK:
            self.ok += 1
        else:
            self.failed += 1
        if len(self.records) >= self.config.max_requests or time.monotonic() > self.deadline:
            self.pace.set("idle")

    async def request(
        self,
        model: ClientModel,
        target: Target,
        connection: Connection | None,
        started: float | None = None,
    ) -> Connection | None:
        """One GET as `model` sends it, on its kept `connection` or a new one; return the
        connection to keep, if any. `started`: when the request arrived (default: now)."""
        started = time.monotonic() if started is None else started
        now = time.monotonic()
        dropped = False
        if connection is not None:
            if model.idle_timeout is not None and now - connection.idle_since > model.idle_timeout:
                close(connection)
                connection = None
            elif model.checks_dropped and connection.dropped():
                close(connection)
                connection, dropped = None, True
        reused = connection is not None
        attempts, port = 0, connection.port if connection else 0
        request = httpclient.request(self.config.path, "service", model.keep_alive)
        try:
            async with asyncio.timeout(self.config.request_timeout):
                while True:
                    attempts += 1
                    on_reused = connection is not None
                    try:
                        if connection is None:
                            sock, port = bound_socket(target)
                            if target.netns is not None:
                                self.new_connections[target.netns].forget(port, target.host)
                            connection = await open_connection(sock, target)
                        connection.send(request)
                        response = await httpclient.read_response(connection.reader)
                        break
                    except (OSError, asyncio.IncompleteReadError):
                        close(connection)
                        connection = None
                        # go net/http transport.go shouldRetryRequest: a reused connection
                        # that failed before any byte of the answer, once.
                        if not (model.retries_reused and on_reused):
                            raise
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            httpclient.CutMidResponse,
            ValueError,
        ) as error:
            close(connection)
            self.record(
                started,
                classify(error),
                "",
                model.name,
                port=port,
                reused=reused,
                dropped=dropped,
                attempts=attempts,
                node=target.node,
            )
            if target.netns is not None and port:
                self.unattributed.append((len(self.records) - 1, target, port))
            return None
        connection.answered += 1
        self.record(
            started,
            OK if response.status == self.config.expect_status else f"http {response.status}",
            response.headers.get("x-app-version", ""),
            model.name,
            port=port,
            reused=reused,
            dropped=dropped,
            attempts=attempts,
            node=target.node,
        )
        if target.netns is not None and port and self.records[-1].outcome != OK:
            self.unattributed.append((len(self.records) - 1, target, port))
        if not model.keep_alive or response.closes:
            close(connection)
            return None
        connection.idle()
        return connection

    async def paced_client(self, model: ClientModel, target: Target, index: int) -> None:
        """Evenly spaced requests at its share of the rate; back to back when measuring."""
        loop = asyncio.get_running_loop()
        connection: Connection | None = None
        next_at = 0.0
        pace_seen = None
        while not self.stopping:
            pace = self.pace
            share = self.share()
            if pace.mode == "idle" or (pace.mode == "rate" and share == 0):
                close(connection)
                connection = None
                await pace.changed.wait()
                continue
            if pace.mode == "rate":
                interval = 1 / share
                now = loop.time()
                if pace_seen is not pace.changed:  # a new rate: spread the clients out again
                    pace_seen = pace.changed
                    next_at = now + interval * index / profiles.rate_driven(self.config.clients)
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                # Late by more than one interval: do not burst to catch up.
                next_at = max(next_at + interval, loop.time() - interval)
            connection = await self.request(model, target, connection)
        close(connection)

    async def think_client(self, model: ClientModel, target: Target) -> None:
        """A request, a think time, the next request; whatever the rate, while there is load."""
        connection: Connection | None = None
        first = True
        while not self.stopping:
            if self.pace.mode == "idle":
                close(connection)
                connection, first = None, True
                await self.pace.changed.wait()
                continue
            # The clients start spread over one think time, not all at once.
            think = self.rng.uniform(0, model.think_seconds[1]) if first else 0.0
            first = False
            if think and await self.idle_within(think):
                continue
            connection = await self.request(model, target, connection)
            if await self.idle_within(self.rng.uniform(*model.think_seconds)):
                continue
        close(connection)

    async def idle_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the load stops meanwhile (then True)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.pace.idle.wait(), seconds)
        return self.pace.mode == "idle"

    async def open_loop_client(self, model: ClientModel, target: Target) -> None:
        """Poisson arrivals at its share of the rate, in calm and burst periods; each arrival a
        request on a new connection, sent whether or not earlier ones were answered."""
        loop = asyncio.get_running_loop()
        bursts = model.bursts
        bursting = False
        period_ends = loop.time() + self.rng.expovariate(1 / bursts.mean_calm_seconds)
        while not self.stopping:
            share = self.share()
            if self.pace.mode != "rate" or share == 0:
                await self.pace.changed.wait()
                continue
            rate = bursts.calm_rate(share) * (bursts.factor if bursting else 1)
            arrival = loop.time() + self.rng.expovariate(rate)
            if arrival >= period_ends:  # memoryless: start afresh in the next period
                await asyncio.sleep(max(0.0, period_ends - loop.time()))
                bursting = not bursting
                mean = bursts.mean_burst_seconds if bursting else bursts.mean_calm_seconds
                period_ends = loop.time() + self.rng.expovariate(1 / mean)
                continue
            await asyncio.sleep(max(0.0, arrival - loop.time()))
            if self.pace.mode == "rate":
                task = loop.create_task(self.arrive(model, target))
                self.arrivals.add(task)
                task.add_done_callback(self.arrivals.discard)

    async def arrive(self, model: ClientModel, target: Target) -> None:
        started = time.monotonic()
        async with self.open_slots:
            await self.request(model, target, None, started)

    def clients(self) -> list:
        """One coroutine per client; each model's clients spread round-robin over the targets."""
        coroutines = []
        index = 0  # among the paced clients, to spread their first requests over one interval
        for name, count in self.config.clients.items():
            model = self.models[name]
            for i in range(count):
                target = self.targets[i % len(self.targets)]
                if model.arrivals == PACED:
                    coroutines.append(self.paced_client(model, target, index))
                    index += 1
                elif model.arrivals == THINK:
                    coroutines.append(self.think_client(model, target))
                elif model.arrivals == OPEN:
                    index += 1
                    coroutines.append(self.open_loop_client(model, target))
        return coroutines

    async def closed_loop(self, seconds: float) -> float:
        before = self.ok
        self.pace.set("closed")
        await asyncio.sleep(seconds)
        self.pace.set("idle")
        return (self.ok - before) / seconds

    async def run(self, records_path: str) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        for watcher in self.new_connections.values():
            watcher.start()
        clients = [loop.create_task(client) for client in self.clients()]
        reporter = loop.create_task(self.report_counts())
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        while True:
            remaining = max(0.1, self.deadline - time.monotonic())
            try:
                line = await asyncio.wait_for(commands.readline(), remaining)
            except TimeoutError:
                line = b""
            command, *argument = line.decode().split() or ["stop"]  # EOF: the rehearsal left
            if command == "closed":
                send(f"capacity {await self.closed_loop(float(argument[0]))}")
            elif command == "rate":
                self.pace.set("rate", float(argument[0]))
            elif command == "stop":
                break
        self.stopping = True
        self.pace.set("idle")
        await asyncio.wait(clients + list(self.arrivals), timeout=config.request_timeout + 1)
        for task in clients + list(self.arrivals):
            task.cancel()
        reporter.cancel()
        self.attribute()
        for watcher in self.new_connections.values():
            watcher.stop()
        with open(records_path, "w") as out:
            json.dump([astuple(record) for record in self.records], out)
        send("done")

    async def report_counts(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            send(f"count {self.ok} {self.failed}")
            # Soon after each failure, before its client port can serve another connection
            # whose event would take its place.
            self.attribute()

    def attribute(self) -> None:
        """Fill in the pod IP of each failed request sent through the kernel's NAT, from the
        conntrack events of its node."""
        for watcher in self.new_connections.values():
            watcher.read()
        pending, self.unattributed = self.unattributed, []
        for index, target, port in pending:
            found = self.new_connections[target.netns].destinations
            address = found.get((port, target.host), "")
            self.records[index] = replace(self.records[index], pod_address=address)


def send(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the rehearsal is gone; finish quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class LoadProcess:
    """The rehearsal's handle on the load process (`python -m tools.rehearsal.traffic.load`)."""

    def __init__(self, config: LoadConfig, records_path: Path) -> None:
        self.config = config
        self.records_path = records_path
        self.process: asyncio.subprocess.Process | None = None
        self.ok = self.failed = 0
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tools.rehearsal.traffic.load",
            json.dumps(asdict(self.config)),
            str(self.records_path),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.process.stdout:
            kind, *values = raw.decode().split()
            if kind == "count":
                self.ok, self.failed = int(values[0]), int(values[1])
            else:
                await self.replies.put(raw.decode().strip())

    def _send(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")

    async def _reply(self, timeout: float) -> str:
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def measure_capacity(self, seconds: float) -> float:
        """Successful requests per second with every paced client going as fast as it can
        (think-time clients keep thinking; open-loop arrivals pause)."""
        self._send(f"closed {seconds}")
        return float((await self._reply(seconds + 30)).split()[1])

    def set_rate(self, rate: float) -> None:
        self._send(f"rate {rate}")

    async def stop(self) -> list[RequestRecord]:
        self._send("stop")
        await self._reply(self.config.request_timeout + 30)
        await self.process.wait()
        with open(self.records_path) as records:
            loaded = [RequestRecord(*record) for record in json.load(records)]
        self.records_path.unlink()
        return loaded

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


def main() -> None:
    config = LoadConfig(**json.loads(sys.argv[1]))
    asyncio.run(Generator(config).run(sys.argv[2]))


if __name__ == "__main__":
    main()
