"""Just enough HTTP/1.1 over asyncio streams for probes and load clients (loopback only)."""

import asyncio
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def request(
    path: str, host: str, keep_alive: bool, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: rehearsal"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class CutMidResponse(Exception):
    """The connection failed after part of the answer had arrived (the cause is chained)."""


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one answer. A failure before its first byte is raised as it is (the connection
    ended, or was reset, before any answer); a failure after it as CutMidResponse."""
    first = await reader.readexactly(1)
    try:
        return await _read_rest(first, reader)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise CutMidResponse(str(error) or type(error).__name__) from error


async def _read_rest(first: bytes, reader: asyncio.StreamReader) -> Response:
    head = first + await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await read_chunked(reader)
    else:
        body = await reader.read()
    return Response(status, headers, body)


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return body


async def get(
    address: str, port: int, path: str, timeout: float, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """One request on a new connection, the way the kubelet probes; raises on any failure."""

    async def exchange() -> Response:
        reader, writer = await asyncio.open_connection(address, port)
        try:
            writer.write(request(path, f"{address}:{port}", keep_alive=False, headers=headers))
            return await read_response(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)
