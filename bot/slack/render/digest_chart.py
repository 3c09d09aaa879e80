"""The digest's one chart: 7-day trends of the key KPIs, small multiples in one PNG (Agg)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date, timedelta

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.charts import RENDER_LOCK
from bot.domain.kpi import KpiValue, Level, format_value

TREND_DAYS = 7
MAX_PANELS = 6
_COLUMNS = 2
_PANEL_IN = (5.0, 2.6)
_DPI = 100
_COLOURS = {Level.OK: "tab:blue", Level.WARN: "tab:orange", Level.FAIL: "tab:red"}


def render_trends(values: Sequence[KpiValue], day: date) -> bytes | None:
    """A PNG with one panel per KPI (the first six) over the 7 days ending `day`; None if empty."""
    panels = [v for v in values if v.error is None and v.series][:MAX_PANELS]
    if not panels:
        return None
    days = [day - timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS)]
    rows = math.ceil(len(panels) / _COLUMNS)
    with RENDER_LOCK:
        figure = Figure(
            figsize=(_PANEL_IN[0] * _COLUMNS, _PANEL_IN[1] * rows), dpi=_DPI, layout="constrained"
        )
        for index, value in enumerate(panels, start=1):
            axes = figure.add_subplot(rows, _COLUMNS, index)
            missing: list[float | None] = [None] * TREND_DAYS
            points = [*missing, *value.series][-TREND_DAYS:]
            ys = [math.nan if p is None else p for p in points]
            colour = _COLOURS[value.level]
            axes.plot(range(TREND_DAYS), ys, marker="o", linewidth=2.2, color=colour)
            demo = " (demo data)" if value.demo else ""
            axes.set_title(
                f"{value.kpi.name}: {format_value(value.value, value.kpi.unit)}{demo}",
                fontsize=12,
                loc="left",
            )
            axes.set_xticks(range(TREND_DAYS), [d.strftime("%a %d") for d in days], fontsize=9)
            unit = value.kpi.unit
            axes.yaxis.set_major_formatter(
                FuncFormatter(lambda y, _pos, unit=unit: format_value(y, unit))
            )
            axes.tick_params(axis="y", labelsize=9)
            axes.grid(True, alpha=0.3)
            for limit, level in ((value.kpi.warn, Level.WARN), (value.kpi.fail, Level.FAIL)):
                if limit is not None:
                    axes.axhline(limit, color=_COLOURS[level], linestyle=":", linewidth=1.5)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
        return buffer.getvalue()
