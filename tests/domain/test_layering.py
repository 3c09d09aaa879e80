import ast
from pathlib import Path

FORBIDDEN = (
    "slack_sdk",
    "slack_bolt",
    "aiohttp",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "bot.store",
    "bot.slack",
)


def test_domain_imports_no_io_library() -> None:
    domain = Path(__file__).resolve().parents[2] / "bot" / "domain"
    offenders = []
    for path in domain.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []
