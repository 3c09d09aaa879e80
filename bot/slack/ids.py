"""Slash-command names and Block Kit action ids; manifest.yml lists the same."""

from __future__ import annotations

ACKNOWLEDGE = "incident_acknowledge"
ESCALATE = "incident_escalate"
RESOLVE = "incident_resolve"
SILENCE_1H = "incident_silence_1h"
RUN_DIAGNOSTICS = "incident_run_diagnostics"
REOPEN = "incident_reopen"

# The buttons of an open, triggered card, in order; an acknowledged card drops Acknowledge, a
# resolved one offers Reopen (and diagnostics) only.
CARD_ACTIONS: tuple[str, ...] = (ACKNOWLEDGE, ESCALATE, RESOLVE, SILENCE_1H, RUN_DIAGNOSTICS)
RESOLVED_CARD_ACTIONS: tuple[str, ...] = (REOPEN, RUN_DIAGNOSTICS)
CARD_BLOCK_ID = "incident_actions"
CARD_METADATA_EVENT = "tocsin_incident_card"
POST_METADATA_EVENT = "tocsin_post"  # any other message posted once (notes, pages, DMs, digest)
DIAGNOSTICS_METADATA_EVENT = "tocsin_diagnostics"
UNSILENCE = "incident_unsilence"
# In place of Silence 1h while the alert group flaps: a silence that outlasts its resolves.
SILENCE_FLAPPING = "incident_silence_flapping"
SPLIT_GROUP = "storm_split_group"  # a calm storm's offer: split this group out (value: its id)

INCIDENT_COMMAND = "/incident"
ONCALL_COMMAND = "/oncall"
DIAG_COMMAND = "/diag"
KPI_COMMAND = "/kpi"
COMMANDS: tuple[str, ...] = (INCIDENT_COMMAND, ONCALL_COMMAND, DIAG_COMMAND, KPI_COMMAND)
DECLARE_MODAL = "incident_declare_modal"
