"""Linux network namespaces as the rehearsal uses them: each held by a pause process, as a pod's
sandbox is by Kubernetes' pause container, never by a name under /run/netns.

A namespace lives as long as a process or a socket is in it. Every pause process dies with the
rehearsal (PR_SET_PDEATHSIG) and every server in it too, so whatever ends the run (its end, an
error, Ctrl-C, SIGKILL) the kernel removes the namespaces and, with them, their veth links,
addresses, routes and iptables rules: nothing is left to clean up by name.

Python 3.11 has no os.setns or os.unshare: both are called through libc, resolved at import (as
tools/serverprocess.py does for prctl) because they also run between fork and exec.
"""

import asyncio
import contextlib
import ctypes
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from tools.serverprocess import die_with_parent

CLONE_NEWNET = 0x40000000
SYSTEM_BIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_setns.restype = ctypes.c_int
_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)
_unshare.restype = ctypes.c_int


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def setns(descriptor: int) -> None:
    """Move the calling thread into the network namespace `descriptor` refers to."""
    _check(_setns(descriptor, CLONE_NEWNET), "setns")


def available() -> str | None:
    """None when this process can make network namespaces (root on Linux, with `ip`), else why
    not."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if os.geteuid() != 0:
        return "not root"
    for command, package in (("ip", "iproute2"), ("iptables-restore", "iptables")):
        if not any(os.access(os.path.join(d, command), os.X_OK) for d in SYSTEM_BIN):
            return f"no `{command}` command ({package})"
    return None


def _enter_new_namespace() -> None:
    """A pause process's preexec_fn: die with the rehearsal, in a namespace of its own."""
    die_with_parent()
    _check(_unshare(CLONE_NEWNET), "unshare")


def _enter(descriptor: int) -> None:
    """preexec_fn of a process started in a namespace: die with the rehearsal, there."""
    die_with_parent()
    setns(descriptor)


@dataclass
class Namespace:
    """One network namespace and the pause process that holds it."""

    name: str  # what it is to the run: "cluster", "node-0", a pod's name
    pause: asyncio.subprocess.Process

    @property
    def path(self) -> str:
        """The namespace's file: open it to enter the namespace (another process may too)."""
        return f"/proc/{self.pause.pid}/ns/net"

    @property
    def pid(self) -> int:
        return self.pause.pid

    def proc_net(self, name: str) -> str:
        """A /proc/net file of this namespace (tcp, nf_conntrack), readable from any other."""
        return f"/proc/{self.pause.pid}/net/{name}"

    async def close(self) -> None:
        if self.pause.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.pause.kill()
        await self.pause.wait()


async def create(name: str) -> Namespace:
    """A new, empty network namespace (only its loopback device, down)."""
    pause = await asyncio.create_subprocess_exec(
        "sleep",
        "infinity",
        preexec_fn=_enter_new_namespace,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the rehearsal's group is the rehearsal's
    )
    return Namespace(name, pause)


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """The calling thread in the namespace at `path`, then back where it was. Sockets made
    inside stay in that namespace wherever they are used later."""
    there = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(there)
        raise
    try:
        setns(there)
        try:
            yield
        finally:
            setns(here)
    finally:
        os.close(there)
        os.close(here)


def socket_in(path: str | None) -> socket.socket:
    """A non-blocking TCP socket in the namespace at `path` (None: where the caller is)."""
    if path is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    else:
        with entered(path):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


class Sockets:
    """socket_in for a process that makes a socket per connection in a few namespaces (the
    load): the namespaces' files stay open, two setns calls a socket. Only for a thread that
    never moves otherwise; the files are closed with the process."""

    def __init__(self) -> None:
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.opened: dict[str, int] = {}

    def make(self, path: str | None) -> socket.socket:
        if path is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            if path not in self.opened:
                self.opened[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            setns(self.opened[path])
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                setns(self.home)
        sock.setblocking(False)
        return sock


@contextlib.contextmanager
def preexec_in(path: str | None) -> Iterator:
    """A preexec_fn that starts a process in the namespace at `path`, dying with the rehearsal
    (die_with_parent alone when `path` is None). The descriptor it needs is opened here, in the
    parent, and closed when the block ends (after the fork)."""
    if path is None:
        yield die_with_parent
        return
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield partial(_enter, descriptor)
    finally:
        os.close(descriptor)


async def run(path: str | None, *argv: str, stdin: bytes | None = None) -> None:
    """Run a command (ip, iptables-restore) in the namespace at `path`; OSError with its
    output when it fails."""
    with preexec_in(path) as preexec:
        process = await asyncio.create_subprocess_exec(
            *argv,
            preexec_fn=preexec,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    output, _ = await process.communicate(stdin)
    if process.returncode != 0:
        text = output.decode(errors="replace").strip().splitlines()
        raise OSError(f"{' '.join(argv[:3])}: {text[-1] if text else process.returncode}")
