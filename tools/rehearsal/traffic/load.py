"""Load through the Service, from its own process (`python -m tools.rehearsal.traffic.load`),
so that it has its own interpreter and can use the other core.

Two kinds of clients: a new connection per request (the `while true; do wget ...; done` loop)
and keep-alive clients that reuse their connection until the server says `Connection: close`.
Every request is recorded: start time, latency, outcome (`ok`, `http <status>` for any other
answer, or how the connection failed: refused, reset before answer, cut mid-response, timeout),
version (X-App-Version), client kind and the client's port (to find the connection in the
Service's records). Load is loopback-only and bounded in request count and duration.
"""

import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

from tools.rehearsal.traffic import httpclient
from tools.rehearsal.traffic.outcomes import FRESH, KEEPALIVE, OK, RequestRecord, classify
from tools.repo import ROOT


@dataclass(frozen=True)
class LoadConfig:
    host: str
    port: int
    fresh_clients: int = 8
    keepalive_clients: int = 8
    path: str = "/status"
    request_timeout: float = 5.0
    max_requests: int = 500_000
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not self.host.startswith("127."):
            raise ValueError(f"load is loopback-only, got host {self.host!r}")


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def port(self) -> int:
        """The client's local port: the key to this connection in the Service's records."""
        return self.writer.get_extra_info("sockname")[1]


# The clients' own loopback address. Their ports are bound before connecting (below), from the
# same range as any server's port picked with bind(0); on an address of their own they never
# take a port a test server on 127.0.0.1 is about to bind.
CLIENT_ADDRESS = "127.0.1.1"


def bound_socket() -> tuple[socket.socket, int]:
    """A client socket with its port chosen before it connects, so that even a connection the
    Service resets during the handshake can be found in the Service's records."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((CLIENT_ADDRESS, 0))
    return sock, sock.getsockname()[1]


async def open_connection(sock: socket.socket, host: str, port: int):
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def close(connection: Connection | None) -> None:
    if connection is not None:
        connection.writer.close()


class Pace:
    """What the clients do now: idle, closed loop (as fast as they can) or a fixed total rate."""

    def __init__(self) -> None:
        self.mode = "idle"
        self.rate = 0.0
        self.changed = asyncio.Event()

    def set(self, mode: str, rate: float = 0.0) -> None:
        self.mode, self.rate = mode, rate
        self.changed.set()
        self.changed = asyncio.Event()


class Generator:
    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.ok = self.failed = 0
        self.pace = Pace()
        self.records: list[RequestRecord] = []
        self.stopping = False
        self.deadline = time.monotonic() + config.max_seconds

    def record(self, started: float, outcome: str, version: str, kind: str, port: int) -> None:
        self.records.append(
            RequestRecord(started, time.monotonic() - started, outcome, version, kind, port)
        )
        if outcome == OK:
            self.ok += 1
        else:
            self.failed += 1
        if len(self.records) >= self.config.max_requests or time.monotonic() > self.deadline:
            self.pace.set("idle")

    async def request(self, connection: Connection | None, keep_alive: bool) -> Connection | None:
        """One GET, on `connection` or a new one; return the connection to reuse, if any."""
        config = self.config
        kind = KEEPALIVE if keep_alive else FRESH
        started = time.monotonic()
        port = connection.port if connection else 0
        try:
            if connection is None:
                sock, port = bound_socket()
                connection = Connection(
                    *await asyncio.wait_for(
                        open_connection(sock, config.host, config.port), config.request_timeout
                    )
                )
            connection.writer.write(httpclient.request(config.path, "service", keep_alive))
            response = await asyncio.wait_for(
                httpclient.read_response(connection.reader), config.request_timeout
            )
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            httpclient.CutMidResponse,
            ValueError,
        ) as error:
            self.record(started, classify(error), "", kind, port)
            close(connection)
            return None
        outcome = OK if response.status == 200 else f"http {response.status}"
        version = response.headers.get("x-app-version", "")
        self.record(started, outcome, version, kind, connection.port)
        if not keep_alive or response.closes:
            close(connection)
            return None
        return connection

    async def client(self, index: int, clients: int, keep_alive: bool) -> None:
        loop = asyncio.get_running_loop()
        connection: Connection | None = None
        next_at = 0.0
        pace_seen = None
        while not self.stopping:
            pace = self.pace
            if pace.mode == "idle":
                close(connection)
                connection = None
                await pace.changed.wait()
                continue
            if pace.mode == "rate":
                interval = clients / pace.rate
                now = loop.time()
                if pace_seen is not pace.changed:  # a new rate: spread the clients out again
                    pace_seen, next_at = pace.changed, now + index / pace.rate
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                # Late by more than one interval: do not burst to catch up.
                next_at = max(next_at + interval, loop.time() - interval)
            connection = await self.request(connection, keep_alive)
        close(connection)

    async def closed_loop(self, seconds: float) -> float:
        before = self.ok
        self.pace.set("closed")
        await asyncio.sleep(seconds)
        self.pace.set("idle")
        return (self.ok - before) / seconds

    async def run(self, records_path: str) -> None:
        config = self.config
        total = config.fresh_clients + config.keepalive_clients
        kinds = [False] * config.fresh_clients + [True] * config.keepalive_clients
        clients = [
            asyncio.create_task(self.client(i, total, keep_alive))
            for i, keep_alive in enumerate(kinds)
        ]
        reporter = asyncio.create_task(self.report_counts())
        loop = asyncio.get_running_loop()
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
        await asyncio.wait(clients, timeout=config.request_timeout + 1)
        for task in clients:
            task.cancel()
        reporter.cancel()
        with open(records_path, "w") as out:
            json.dump([astuple(record) for record in self.records], out)
        send("done")

    async def report_counts(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            send(f"count {self.ok} {self.failed}")


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
        """Successful requests per second with every client going as fast as it can."""
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
