"""How every HTTP route answers a refusal, and checks a bearer token."""

from __future__ import annotations

import hmac

from aiohttp import web


def problem(status: int, reason: str) -> web.Response:
    """A refusal with its reason, as every route answers one: `{"ok": false, "error": …}`."""
    return web.json_response({"ok": False, "error": reason}, status=status)


def bearer_ok(request: web.Request, token: str | None) -> bool:
    """True when no token is required, or the request carries it (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
