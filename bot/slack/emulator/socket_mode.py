"""Socket Mode for the Slack emulator: apps.connections.open and the websocket it opens.

As Slack does (contracts semantics.md, Socket Mode): the app calls apps.connections.open with
its app-level token (`xapp-…`) and gets a one-time websocket URL; on connect Slack says
`hello`; each request is an envelope `{envelope_id, type, payload, accepts_response_payload}`
sent to ONE of the app's open connections, at random; the app acknowledges with
`{"envelope_id": …}` (and a `payload` where the type takes a response).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.slack.emulator.outbound import SEND_TIMEOUT, EmulatorReply

MAX_CONNECTIONS = 10  # an app may hold at most 10 (BOLT issues #448, #579)


@dataclass
class SocketHub:
    """The app's open Socket Mode connections and the envelopes waiting for their ack."""

    app_id: str
    tickets: set[str] = field(default_factory=set)
    connections: list[web.WebSocketResponse] = field(default_factory=list)
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    envelopes: list[dict[str, Any]] = field(default_factory=list)  # every one sent, for tests

    def open_url(self, api_base: str) -> dict[str, Any]:
        """apps.connections.open: a one-time websocket URL on this emulator."""
        if len(self.connections) >= MAX_CONNECTIONS:
            return {"ok": False, "error": "too_many_websockets"}
        ticket = secrets.token_urlsafe(12)
        self.tickets.add(ticket)
        base = api_base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return {"ok": True, "url": f"{base}socket/{ticket}?app_id={self.app_id}"}

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """The websocket of one connection: hello, then acks until it closes."""
        ticket = request.match_info["ticket"]
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        self.tickets.discard(ticket)
        socket = web.WebSocketResponse(autoping=True)  # pongs echo the client's ping payload
        await socket.prepare(request)
        self.connections.append(socket)
        try:
            await socket.send_json(self._hello())
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._on_ack(message.data)
        finally:
            self.connections.remove(socket)
        return socket

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {"host": "applink-emulator", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _on_ack(self, text: str) -> None:
        try:
            ack = json.loads(text)
        except ValueError:
            return
        if not isinstance(ack, dict):
            return
        waiting = self.pending.pop(str(ack.get("envelope_id")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(ack)

    async def deliver(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool
    ) -> EmulatorReply:
        """Send one envelope to one open connection (chosen at random) and wait for its ack.

        The reply's body is the ack's `payload` as JSON (empty without one); a request never
        acknowledged gives status 0 after SEND_TIMEOUT.
        """
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        self.envelopes.append(envelope)
        acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[envelope_id] = acked
        start = time.perf_counter()
        await secrets.choice(self.connections).send_json(envelope)
        try:
            ack = await asyncio.wait_for(acked, timeout=SEND_TIMEOUT)
        except TimeoutError:
            self.pending.pop(envelope_id, None)
            return EmulatorReply(status=0, body="", elapsed=time.perf_counter() - start)
        body = json.dumps(ack["payload"]) if ack.get("payload") is not None else ""
        return EmulatorReply(status=200, body=body, elapsed=time.perf_counter() - start)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every connection to reconnect, as Slack does before it closes one."""
        for socket in list(self.connections):
            await socket.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
            )

    async def close(self) -> None:
        """Close every connection (the emulator stops)."""
        for socket in list(self.connections):
            await socket.close()
