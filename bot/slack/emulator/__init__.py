"""The Slack emulator: a model of Slack's Web API, request signing, Socket Mode and rate limits,
served over HTTP so that `AsyncWebClient(base_url=...)` talks to it unchanged. The sandbox
serves it and every test trusts it, so it behaves as Slack documents (shared/contracts).

- `server`: the aiohttp server and `SlackEmulator`, the handle tests and the sandbox hold;
- `state`: the workspace as plain dataclasses; `render`: state in the Web API's JSON shapes;
- `methods/`: chat and pins, conversations, the rest (auth, users, usergroups, files, views);
- `params`, `blocks`, `limits`: request parsing, Block Kit validation, rate limits;
- `outbound`, `responses`, `socket_mode`: what the emulator sends the bot (signed requests,
  response_url answers, Socket Mode envelopes).

It imports nothing of Tocsin but the ids Slack's requests carry (an import contract).
"""

from bot.slack.emulator.limits import TIER_METHODS, RateLimit, documented_rate_limits
from bot.slack.emulator.outbound import EmulatorReply, sign_request
from bot.slack.emulator.server import RecordedCall, SlackEmulator
from bot.slack.emulator.state import EmulatorState

__all__ = [
    "TIER_METHODS",
    "EmulatorReply",
    "EmulatorState",
    "RateLimit",
    "RecordedCall",
    "SlackEmulator",
    "documented_rate_limits",
    "sign_request",
]
