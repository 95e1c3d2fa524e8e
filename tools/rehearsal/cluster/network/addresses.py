"""Pod IPs: one loopback address per pod (127.0.0.2 upwards), never reused within a run.

Rehearsals running at the same time on one machine (a soak beside the tests) share the
loopback network. Each address a run hands out is held with a lock file for the whole run, so
another run skips it even before the pod's server has bound it; otherwise the second run's
kubelet could probe, and its Service route to, the first run's server.
"""

import fcntl
import ipaddress
import os
import socket
import tempfile
from pathlib import Path

from tools.rehearsal.errors import RehearsalError

LOCK_DIR = Path(tempfile.gettempdir()) / "zdt-pod-addresses"


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class AddressPool:
    """Hands out free loopback addresses; an address in use on `port`, or held by another
    rehearsal, is skipped. The locks go when the pool is closed or the process ends."""

    def __init__(self, network: str = "127.0.0.0/24", first: int = 2) -> None:
        try:
            net = ipaddress.ip_network(network)
        except ValueError as error:
            raise RehearsalError(f"--pod-network: {error}") from None
        if not net.is_loopback:
            raise RehearsalError(f"--pod-network: {network} is not a loopback network")
        self.hosts = [str(host) for host in net.hosts()][first - 1 :]
        self.next = 0
        self.locks: list[int] = []  # open lock file descriptors, held for the run

    def _hold(self, address: str, port: int) -> bool:
        LOCK_DIR.mkdir(exist_ok=True)
        descriptor = os.open(LOCK_DIR / f"{address}:{port}", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self.locks.append(descriptor)
        return True

    def allocate(self, port: int) -> str:
        while self.next < len(self.hosts):
            address = self.hosts[self.next]
            self.next += 1
            if self._hold(address, port):
                if port_is_free(address, port):
                    return address
                os.close(self.locks.pop())
        raise RehearsalError(f"no free pod address left in the pod network for port {port}")

    def close(self) -> None:
        for descriptor in self.locks:
            os.close(descriptor)
        self.locks = []
