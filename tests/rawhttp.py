"""HTTP/1.1 requests written on a raw socket, so a body can arrive as real networks deliver it:
in pieces with pauses between them, or chunked with no Content-Length."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawAnswer:
    """The status line's code and the body of an answer."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def pieces(body: bytes, count: int) -> list[bytes]:
    """`body` cut into `count` pieces of about the same size."""
    size = max(1, -(-len(body) // count))
    return [body[i : i + size] for i in range(0, len(body), size)]


async def send_raw(
    url: str,
    body_pieces: Sequence[bytes],
    *,
    headers: Mapping[str, str],
    chunked: bool = False,
    pause: float = 0.05,
    content_length: int | None = None,
) -> RawAnswer:
    """POST `body_pieces` to `url`, each written and flushed on its own with `pause` between them.

    With `chunked`, each piece is one chunk of `Transfer-Encoding: chunked` and no
    Content-Length is sent; otherwise Content-Length is the whole body's length (or
    `content_length`, to announce a size)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    total = sum(len(p) for p in body_pieces)
    head = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    else:
        head.append(f"Content-Length: {total if content_length is None else content_length}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        for piece in body_pieces:
            await asyncio.sleep(pause)
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the server may answer (413) and close before the whole body is sent
    answer = await reader.read()
    writer.close()
    return _parse(answer)


def _parse(answer: bytes) -> RawAnswer:
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        return RawAnswer(status, body)
    return RawAnswer(status, rest)
