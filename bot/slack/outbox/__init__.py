"""The outbox: Slack work as durable jobs, drained within Slack's rate limits by the process that
holds the lease. `worker` drains, `caller` makes one call at a time paced by `ratelimit`, `jobs`,
`paging`, `diagnostic_jobs` and `workspace_jobs` do each kind of job (`job_table` says which).
"""

from bot.slack.outbox.worker import OutboxWorker

__all__ = ["OutboxWorker"]
