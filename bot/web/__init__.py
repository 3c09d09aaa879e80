"""The HTTP edge: routes that only convert (bearer check and refusals in `answers`, whole
bodies in `bodies`), the webhooks, health and metrics, and the application (`app`)."""

from bot.web.answers import bearer_ok, problem
from bot.web.app import build_web_app
from bot.web.webhooks import WebDeps

__all__ = ["WebDeps", "bearer_ok", "build_web_app", "problem"]
