"""The SQLite store: everything that makes one SQLite file serve a busy process.

- `engines`: the pragmas, and writers that take the write lock when they begin
  (`BEGIN IMMEDIATE`), waiting at most a moment for it (`busy_timeout`).
- `locks`: a writer that finds the lock held by another process (`tocsin db upgrade`, a
  backup) gives the event loop back and tries again, up to a budget, then `StoreBusy`.
- `batches`: units of work that only touch the store run in one transaction on a thread of
  their own, on pysqlite; the event loop never waits on SQLite.
- `sessions`: the async session API over that thread's sync Session.
- `prepared`: hot Core statements compiled once and run through `exec_driver_sql`.
- `checkpoint`: the write-ahead log copied back by a thread of its own.

Reads and the other writers run on aiosqlite, whose thread does the I/O. Nothing here runs a
statement on the event loop.
"""
