"""Request bodies read whole, however they arrive (in pieces, chunked, slowly)."""

from __future__ import annotations

from aiohttp import web


class BodyTooLarge(Exception):
    """The request's body is over the limit (announced, or counted while reading)."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however it arrives (in pieces, chunked, slowly), or BodyTooLarge.

    `request.content.read(n)` answers with what is buffered so far, not the whole body, so
    read until the end of the stream, counting as the pieces come.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)
