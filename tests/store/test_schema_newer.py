"""A schema newer than the code (a rolling upgrade's first step) is told from an unknown one."""

from __future__ import annotations

from bot.store import schema


def test_a_revision_this_code_does_not_know_is_newer() -> None:
    assert not schema.is_newer(schema.head_revision())
    assert not schema.is_newer("0001")
    assert not schema.is_newer(None)
    assert schema.is_newer("0099")
