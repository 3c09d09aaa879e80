"""How every HTTP route answers a refusal (and logs it), and checks a bearer token."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

log = logging.getLogger("bot.web")


def problem(status: int, reason: str) -> web.Response:
    """A refusal with its reason, as every route answers one: `{"ok": false, "error": …}`."""
    return web.json_response({"ok": False, "error": reason}, status=status)


def refused(request: web.Request, status: int, reason: str) -> web.Response:
    """A refusal, logged once: the route, the status and the reason, never what the request
    carried (its token, signature or body)."""
    log.warning(
        "refused %s %s from %s: %s %s",
        request.method,
        request.path,
        request.remote,
        status,
        reason,
        extra={"route": request.path, "status": status, "reason": reason, "remote": request.remote},
    )
    return problem(status, reason)


def bearer_ok(request: web.Request, token: str | None) -> bool:
    """True when no token is required, or the request carries it (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
