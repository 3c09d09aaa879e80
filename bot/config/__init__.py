"""Configuration: environment variables and an optional `tocsin.yml`, validated once at start.

- `settings`: `Settings` and `load_settings` (the file and the environment merged);
- `policies`: escalation policies, on-call rotations and permissions, as domain values;
- `playbooks`: playbook files (schema, loading with line numbers, `tocsin playbooks check`);
- `digest`: the daily digest's KPI definitions and schedules.
"""

from bot.config.settings import SHIPPED_PLAYBOOKS, OutboxSettings, Settings, load_settings

__all__ = ["SHIPPED_PLAYBOOKS", "OutboxSettings", "Settings", "load_settings"]
