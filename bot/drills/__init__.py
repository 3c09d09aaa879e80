"""Drills: rehearse an incident without paging anyone (a realistic notification for a shipped
playbook, and a report of how far its incident got)."""
