"""The server's socket and event loop: the socket is taken before anything else starts (a busy
port is said in one line), and the loop is uvloop's where it is installed."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from bot.errors import CannotListen


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts: a busy port is said in one
    line, and no database is opened for a server that cannot listen."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(f"port {port} is in use on {host}; try --port") from None
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def serving_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the server's event loop: uvloop's where it is installed (every platform but
    Windows), asyncio's own elsewhere."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop
    return uvloop.new_event_loop
