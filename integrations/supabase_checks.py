"""Supabase Postgres checks: the fixed read-only SQL and the pure grading of its rows.

Every query here is constant text. Values reach them only as bound parameters, and
only values Tocsin computes itself (a threshold in seconds, pids read from the server).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.diagnostics import DiagnosticResult, Status, Table, grade, one_line, redact, worst

SOURCE = "supabase"
# Our own sessions carry this name so that they never count as load or long queries.
APP_NAME = "tocsin-diagnostics"

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Thresholds:
    """Where a Supabase check turns warn or fail."""

    connections_warn: float = 0.7  # used / max_connections
    connections_fail: float = 0.9
    long_query_seconds: float = 30.0
    long_queries_warn: int = 1
    long_queries_fail: int = 5
    blocked_warn: int = 1
    blocked_fail: int = 5
    size_warn_bytes: int | None = None
    size_fail_bytes: int | None = None
    cache_hit_warn: float = 0.95  # lower is worse
    cache_hit_fail: float = 0.90
    replication_lag_warn_s: float = 30
    replication_lag_fail_s: float = 300


SESSION_LIMITS_SQL = (
    "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)"
)

MAX_CONNECTIONS_SQL = "SELECT current_setting('max_connections')::int AS max"

CONNECTIONS_SQL = """
SELECT coalesce(a.usename, '?') AS role, coalesce(a.state, 'unknown') AS state, count(*)::int AS n
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.application_name IS DISTINCT FROM 'tocsin-diagnostics'
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2
"""

LONG_QUERIES_SQL = """
SELECT a.pid, extract(epoch FROM now() - a.query_start)::float8 AS seconds,
       coalesce(a.usename, '') AS role, a.state, coalesce(a.query, '') AS query,
       count(*) OVER ()::int AS total
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.state <> 'idle'
  AND now() - a.query_start > make_interval(secs => $1::float8)
  AND a.pid <> pg_backend_pid()
  AND a.application_name IS DISTINCT FROM 'tocsin-diagnostics'
ORDER BY a.query_start
LIMIT 10
"""

LOCKS_SQL = """
SELECT a.pid, pg_blocking_pids(a.pid) AS blockers,
       coalesce(extract(epoch FROM now() - a.query_start), 0)::float8 AS seconds,
       coalesce(a.usename, '') AS role, coalesce(a.query, '') AS query,
       count(*) OVER ()::int AS total
FROM pg_stat_activity a
WHERE cardinality(pg_blocking_pids(a.pid)) > 0
ORDER BY a.query_start
LIMIT 50
"""

BACKENDS_SQL = """
SELECT pid, coalesce(state, '') AS state FROM pg_stat_activity WHERE pid = ANY($1::int[])
"""

DATABASE_SIZE_SQL = """
SELECT current_database() AS name, pg_database_size(current_database())::int8 AS bytes,
       pg_size_pretty(pg_database_size(current_database())) AS pretty
"""

# pg_total_relation_size takes an ACCESS SHARE lock: the caller runs this under lock_timeout.
TOP_TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name,
       pg_size_pretty(pg_total_relation_size(c.oid)) AS pretty
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
ORDER BY pg_total_relation_size(c.oid) DESC NULLS LAST, 1, 2
LIMIT 5
"""

CACHE_HIT_SQL = """
SELECT coalesce(sum(heap_blks_hit), 0)::int8 AS heap_hit,
       coalesce(sum(heap_blks_read), 0)::int8 AS heap_read,
       (SELECT coalesce(sum(idx_blks_hit), 0)::int8 FROM pg_statio_user_indexes) AS idx_hit,
       (SELECT coalesce(sum(idx_blks_read), 0)::int8 FROM pg_statio_user_indexes) AS idx_read
FROM pg_statio_user_tables
"""

RECOVERY_SQL = """
SELECT pg_is_in_recovery() AS standby,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_lag
"""

REPLICAS_SQL = """
SELECT coalesce(nullif(application_name, ''), host(client_addr), 'local') AS name,
       coalesce(state, '') AS state, coalesce(sync_state, '') AS sync_state,
       extract(epoch FROM replay_lag)::float8 AS lag
FROM pg_stat_replication
ORDER BY replay_lag DESC NULLS LAST
"""

_PASSWORD_LITERAL = re.compile(r"(?i)(password\s*)'(?:[^']|'')*'")
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+")


def duration(seconds: float) -> str:
    """Seconds as a short human duration: "45s", "1m 05s", "3h 02m", "2d 04h"."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def short_query(query: str, limit: int = 80) -> str:
    """A query on one short line, with secrets, JWTs and password literals masked."""
    masked = _JWT.sub("eyJ***", _PASSWORD_LITERAL.sub(r"\1'***'", query))
    return one_line(redact(masked), limit)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _result(title: str, status: Status, text: str, table: Table | None = None) -> DiagnosticResult:
    return DiagnosticResult(title=title, status=status, text=text, table=table, source=SOURCE)


def connections_result(
    title: str, rows: Sequence[Row], max_connections: int, t: Thresholds
) -> DiagnosticResult:
    """Client connections in use against max_connections, with the busiest role/state pairs."""
    used = sum(int(r["n"]) for r in rows)
    ratio = used / max_connections if max_connections > 0 else 1.0
    status = grade(ratio, warn=t.connections_warn, fail=t.connections_fail)
    cells = tuple((str(r["role"]), str(r["state"]), str(r["n"])) for r in rows[:5])
    text = f"{used}/{max_connections} connections ({ratio:.0%})"
    return _result(title, status, text, Table(("role", "state", "connections"), cells))


def long_queries_result(title: str, rows: Sequence[Row], t: Thresholds) -> DiagnosticResult:
    """Non-idle client backends whose current query started more than the threshold ago."""
    limit = duration(t.long_query_seconds)
    if not rows:
        return _result(title, Status.OK, f"no queries running longer than {limit}")
    total = int(rows[0]["total"])
    status = grade(total, warn=t.long_queries_warn, fail=t.long_queries_fail)
    longest = duration(float(rows[0]["seconds"]))
    text = f"{_plural(total, 'query')} running longer than {limit} (longest {longest})"
    cells = tuple(
        (
            str(r["pid"]),
            duration(float(r["seconds"])),
            str(r["role"]),
            str(r["state"]),
            short_query(str(r["query"])),
        )
        for r in rows
    )
    return _result(title, status, text, Table(("pid", "running", "user", "state", "query"), cells))


def locks_result(
    title: str, rows: Sequence[Row], blocker_states: Mapping[int, str], t: Thresholds
) -> DiagnosticResult:
    """Backends waiting on another backend's lock, and the root blockers."""
    if not rows:
        return _result(title, Status.OK, "no blocked queries")
    total = int(rows[0]["total"])
    status = grade(total, warn=t.blocked_warn, fail=t.blocked_fail)
    longest = duration(max(float(r["seconds"]) for r in rows))
    text = f"{_plural(total, 'backend')} blocked (longest waiting {longest})"
    roots = root_blockers(rows)
    if roots:
        described = ", ".join(
            f"{pid} ({blocker_states[pid]})" if blocker_states.get(pid) else str(pid)
            for pid in roots[:3]
        )
        text += f"; blocked by pid {described}"
    cells = tuple(
        (
            str(r["pid"]),
            ", ".join(str(p) for p in r["blockers"]),
            duration(float(r["seconds"])),
            str(r["role"]),
            short_query(str(r["query"])),
        )
        for r in rows[:10]
    )
    columns = ("pid", "blocked by", "waiting", "user", "query")
    return _result(title, status, text, Table(columns, cells))


def root_blockers(rows: Sequence[Row]) -> list[int]:
    """Pids that block others without being blocked themselves, most blocking first."""
    blocked = {int(r["pid"]) for r in rows}
    counts: dict[int, int] = {}
    for r in rows:
        for pid in r["blockers"]:
            counts[int(pid)] = counts.get(int(pid), 0) + 1
    roots = [pid for pid in counts if pid not in blocked] or list(counts)
    return sorted(roots, key=lambda pid: (-counts[pid], pid))


def size_result(
    title: str, database: Row, tables: Sequence[Row] | None, t: Thresholds
) -> DiagnosticResult:
    """The database's size and its largest tables (None when a table lock kept us out)."""
    status = grade(int(database["bytes"]), warn=t.size_warn_bytes, fail=t.size_fail_bytes)
    text = f"database {database['name']} is {database['pretty']}"
    if tables is None:
        return _result(title, status, text + "; table sizes unavailable (a table is locked)")
    cells = tuple((f"{r['schema']}.{r['name']}", str(r["pretty"])) for r in tables)
    return _result(title, status, text, Table(("table", "total size"), cells))


def cache_hit_result(title: str, row: Row, t: Thresholds) -> DiagnosticResult:
    """Share of table (heap) block reads served from shared buffers; indexes for context."""
    heap_hit, heap_read = int(row["heap_hit"]), int(row["heap_read"])
    if heap_hit + heap_read == 0:
        return _result(title, Status.OK, "no table reads yet")
    ratio = heap_hit / (heap_hit + heap_read)
    status = grade(ratio, warn=t.cache_hit_warn, fail=t.cache_hit_fail, higher_is_worse=False)
    cells = [("tables", _percent(ratio), f"{heap_hit:,}", f"{heap_read:,}")]
    idx_hit, idx_read = int(row["idx_hit"]), int(row["idx_read"])
    if idx_hit + idx_read:
        idx_ratio = _percent(idx_hit / (idx_hit + idx_read))
        cells.append(("indexes", idx_ratio, f"{idx_hit:,}", f"{idx_read:,}"))
    text = f"table cache hit {_percent(ratio)} ({heap_hit:,} hits, {heap_read:,} disk reads)"
    return _result(title, status, text, Table(("kind", "hit rate", "hits", "reads"), tuple(cells)))


def _percent(ratio: float) -> str:
    return f"{ratio:.2%}" if ratio < 1 else "100%"


def standby_result(title: str, replay_lag: float | None, t: Thresholds) -> DiagnosticResult:
    """This server is a standby: how long ago it replayed the primary's last transaction."""
    if replay_lag is None:
        return _result(title, Status.WARN, "standby: no transaction replayed yet")
    status = grade(replay_lag, warn=t.replication_lag_warn_s, fail=t.replication_lag_fail_s)
    text = (
        f"standby: last transaction replayed {duration(replay_lag)} ago"
        " (also grows while the primary is idle)"
    )
    return _result(title, status, text)


def replicas_result(title: str, rows: Sequence[Row], t: Thresholds) -> DiagnosticResult:
    """Replay lag of each replica streaming from this primary."""
    if not rows:
        return _result(title, Status.OK, "no replicas")
    # A NULL lag means the replica has caught up and there is no new WAL to measure.
    lags = [float(r["lag"]) if r["lag"] is not None else 0.0 for r in rows]
    statuses = [
        grade(lag, warn=t.replication_lag_warn_s, fail=t.replication_lag_fail_s) for lag in lags
    ]
    statuses += [Status.WARN for r in rows if r["state"] != "streaming"]
    text = f"{_plural(len(rows), 'replica')}, max replay lag {duration(max(lags))}"
    cells = tuple(
        (str(r["name"]), str(r["state"]), str(r["sync_state"]), duration(lag))
        for r, lag in zip(rows, lags, strict=True)
    )
    table = Table(("replica", "state", "sync", "replay lag"), cells)
    return _result(title, worst(statuses), text, table)
