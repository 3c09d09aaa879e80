"""Diagnostic results as Block Kit: the one place they are turned into Slack messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.domain.diagnostics import DEMO_DATA, DiagnosticResult, Status, Table
from bot.slack.render.text import clip, escape

EMOJI = {
    Status.OK: ":large_green_circle:",
    Status.WARN: ":large_yellow_circle:",
    Status.FAIL: ":red_circle:",
    Status.ERROR: ":grey_question:",
    Status.NOT_CONFIGURED: ":white_circle:",
}
MAX_ROWS = 15
CELL = 40
MAX_MESSAGE_BLOCKS = 50  # Slack's limit per message (contracts §1.8)
# Where a result's graph goes, said under it: only where it really goes.
GRAPH_BELOW = "graph below"
GRAPH_IN_DM = "graph sent to you in a DM"
GRAPH_SHARED = "graph shared in this channel"


def table_text(table: Table) -> str:
    """A table as aligned monospace text inside a code block, within Slack's section limit."""
    rows = [tuple(clip(c, CELL) for c in r) for r in table.rows[:MAX_ROWS]]
    header = tuple(clip(c, CELL) for c in table.columns)
    widths = [
        max(len(str(row[i])) for row in [header, *rows] if i < len(row)) for i in range(len(header))
    ]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    if len(table.rows) > MAX_ROWS:
        lines.append(f"… {len(table.rows) - MAX_ROWS} more rows")
    body = "\n".join(lines).replace("```", "'''")
    return "```" + clip(body, 2990) + "```"


def result_summary(result: DiagnosticResult) -> str:
    """One line: status emoji, title and the short text."""
    return clip(f"{EMOJI[result.status]} *{escape(result.title)}* — {escape(result.text)}", 3000)


def render_result(result: DiagnosticResult, *, graph: str = GRAPH_BELOW) -> list[dict[str, Any]]:
    """The message for one result: summary, table, where it came from and where its graph is."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=result_summary(result)))]
    if result.table is not None and result.table.rows:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=table_text(result.table))))
    context = f"{result.source or 'diagnostic'} · {result.status.value}"
    if result.demo:
        context += f" · :test_tube: {DEMO_DATA}, not a real system"
    if result.image_png:
        context += f" · {graph}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]))
    return [b.to_dict() for b in blocks]


def render_posted(results: Sequence[DiagnosticResult]) -> list[dict[str, Any]]:
    """One channel message for results that are ready together, each as `render_result` draws
    it; the caller keeps them within MAX_MESSAGE_BLOCKS."""
    blocks = [block for result in results for block in render_result(result)]
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        raise ValueError(f"{len(results)} results need {len(blocks)} blocks")
    return blocks


def posted_text(results: Sequence[DiagnosticResult]) -> str:
    """The notification text of such a message: each result's summary line."""
    return clip("\n".join(result_summary(r) for r in results), 3000)


def render_results(
    results: Sequence[DiagnosticResult], *, graph: str = GRAPH_BELOW
) -> list[dict[str, Any]]:
    """Several results in one message (for /diag health), within 50 blocks; `graph` says where
    their graphs went."""
    blocks: list[dict[str, Any]] = []
    for result in results[:16]:
        blocks.extend(render_result(result, graph=graph))
    return blocks[:50]


def results_text(results: Sequence[DiagnosticResult]) -> str:
    """Plain fallback text for several results."""
    return clip("\n".join(f"{r.status.value.upper()} {r.title}: {r.text}" for r in results), 3000)
