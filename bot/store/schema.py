"""Schema migrations with Alembic: upgrade, and the check `serve` makes before it starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every pending migration (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest migration the code knows."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def is_newer(revision: str | None) -> bool:
    """True for a revision this code does not know: a newer Tocsin's `tocsin db upgrade` made
    it (during a rolling upgrade, before this replica is replaced)."""
    if revision is None:
        return False
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return revision not in {r.revision for r in script.walk_revisions()}


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
