"""Pod IPs: one loopback address per pod (127.0.0.2 upwards), never reused within a run."""

import ipaddress
import socket

from tools.rehearsal.errors import RehearsalError


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class AddressPool:
    """Hands out free loopback addresses; an address in use on `port` is skipped."""

    def __init__(self, network: str = "127.0.0.0/24", first: int = 2) -> None:
        try:
            net = ipaddress.ip_network(network)
        except ValueError as error:
            raise RehearsalError(f"--pod-network: {error}") from None
        if not net.is_loopback:
            raise RehearsalError(f"--pod-network: {network} is not a loopback network")
        self.hosts = [str(host) for host in net.hosts()][first - 1 :]
        self.next = 0

    def allocate(self, port: int) -> str:
        while self.next < len(self.hosts):
            address = self.hosts[self.next]
            self.next += 1
            if port_is_free(address, port):
                return address
        raise RehearsalError(f"no free pod address left in the pod network for port {port}")
