"""Presentation of Prometheus answers: numbers, series names, top-N tables and graphs.

Pure functions: parsed answers in; text, DiagnosticResults or PNG bytes out.  Matplotlib is
used through its object API (``Figure``, rendered by Agg on ``savefig``), never ``pyplot``, so
no global figure state is shared between threads.  Times are unix seconds, shown in UTC.
"""

from __future__ import annotations

import io
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from bot.charts import RENDER_LOCK
from bot.domain.diagnostics import DiagnosticResult, Status, Table, grade

__all__ = ["Labels", "Limits", "Point", "Series", "Threshold", "cut", "format_value"]
__all__ += ["graph_result", "instant_result", "legend_labels", "render_graph", "shorten_labels"]

Point = tuple[float, float]  # (unix seconds, value)
Series = tuple[str, Sequence[Point]]  # (legend label, points in time order)
Threshold = tuple[str, float]  # ("warn", 0.5): a labelled horizontal line
Labels = dict[str, str]
Limits = tuple[float | None, float | None]  # (warn above, fail above)

SOURCE = "prometheus"

MAX_SERIES = 8
_SIZE_IN = (10.0, 5.0)  # at 100 dpi: 1000 x 500 px, still readable as a Slack thumbnail
_DPI = 100
_LEGEND_CHARS = 45
_LEGEND_CHAR_PX = 10  # a wide 12 pt character
_LABEL_BOX = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5}
_THRESHOLD_TEXT: dict[str, Any] = {
    "ha": "right",
    "va": "bottom",
    "fontsize": 12,
    "bbox": _LABEL_BOX,
}
_VALUE_CHARS = 40
_LABELS_CHARS = 100
_THRESHOLD_COLOURS = {"warn": "tab:orange", "fail": "tab:red"}
# Matplotlib's default cycle without orange and red, which mean warn and fail here.
_SERIES_COLOURS = ["tab:blue", "tab:green", "tab:purple", "tab:brown"]
_SERIES_COLOURS += ["tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_TICK_STEPS_S = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_MAX_TICKS = 7


def format_value(value: float, unit: str = "") -> str:
    """Three significant digits, k/M/G/T for big numbers, then the unit: '1.23k req/s'."""
    if math.isnan(value):
        number = "NaN"
    elif math.isinf(value):
        number = "+Inf" if value > 0 else "-Inf"
    else:
        number = _three_digits(value)
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def _three_digits(value: float) -> str:
    rounded = float(f"{value:.3g}")  # round first, so 999.7 becomes "1k" and not "1e+03"
    if rounded == 0:
        return "0"  # also for -0.0
    if abs(rounded) < 1e15:
        for scale, prefix in _PREFIXES:
            if abs(rounded) >= scale:
                return f"{rounded / scale:.3g}{prefix}"
    return f"{rounded:.3g}"


def shorten_labels(metrics: Sequence[Mapping[str, str]], *, unnamed: str = "{}") -> list[str]:
    """Short series names, e.g. 'service=api, code=500': only labels that tell series apart.

    ``__name__`` and labels equal in every series are dropped (with one series, only
    ``__name__``); the label with the most distinct values comes first; long values are cut.
    A series with nothing left is called ``unnamed``.
    """
    names = {key for metric in metrics for key in metric}
    distinct = {key: len({m.get(key) for m in metrics}) for key in names}
    if len(metrics) > 1:
        keys = [k for k in names if distinct[k] > 1]
    else:
        keys = [k for k in names if k != "__name__"]
    keys.sort(key=lambda k: (k != "__name__", -distinct[k], k))
    return [_label_text(metric, keys) or cut(unnamed, _LABELS_CHARS) for metric in metrics]


def legend_labels(metrics: Sequence[Mapping[str, str]], title: str) -> list[str]:
    """The names series go by in a graph's legend and a result's table: `name=value` pairs
    that tell them apart; a series without labels (`sum(...)`) is named after the title."""
    return shorten_labels(metrics, unnamed=title or "value")


def _label_text(metric: Mapping[str, str], keys: Sequence[str]) -> str:
    pairs = ", ".join(
        f"{k}={cut(metric[k], _VALUE_CHARS)}" for k in keys if k != "__name__" and k in metric
    )
    name = metric.get("__name__", "") if "__name__" in keys else ""
    text = (f"{name}{{{pairs}}}" if pairs else name) if name else pairs
    return cut(text, _LABELS_CHARS)


def cut(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def instant_result(
    title: str,
    samples: Sequence[tuple[Labels, float]],
    *,
    top: int,
    limits: Limits,
    unit: str,
) -> DiagnosticResult:
    """The top series of an instant query as a table, graded on the highest value."""
    if not samples:
        return DiagnosticResult(title, Status.OK, "no data", source=SOURCE, no_data=True)
    ranked = sorted(samples, key=lambda s: _sort_key(s[1]))
    shown = ranked[:top]
    names = legend_labels([labels for labels, _ in shown], title)
    rows = tuple(
        (name, format_value(value, unit)) for name, (_, value) in zip(names, shown, strict=True)
    )
    highest = shown[0][1]
    text = f"{len(ranked)} series; max {format_value(highest, unit)}" + _about(names[0], title)
    if len(ranked) > top:
        text += f"; top {top} shown"
    status = grade(highest, warn=limits[0], fail=limits[1])
    return DiagnosticResult(title, status, text, Table(("series", "value"), rows), source=SOURCE)


def graph_result(
    title: str,
    matrix: Sequence[tuple[Labels, Sequence[Point]]],
    *,
    window: tuple[datetime, datetime],
    marker: datetime | None,
    limits: Limits,
    unit: str,
) -> DiagnosticResult:
    """A range query as a graph of its top series, graded on the worst latest value."""
    span = _duration_text((window[1] - window[0]).total_seconds())
    if not any(points for _, points in matrix):
        text = f"no data over {span}"
        return DiagnosticResult(title, Status.OK, text, source=SOURCE, no_data=True)
    ranked = sorted(matrix, key=lambda s: _sort_key(_last(s[1])))[:MAX_SERIES]
    names = legend_labels([labels for labels, _ in ranked], title)
    thresholds = [(n, v) for n, v in zip(("warn", "fail"), limits, strict=True) if v is not None]
    png = render_graph(
        [(name, points) for name, (_, points) in zip(names, ranked, strict=True)],
        title=title,
        marker=marker,
        unit=unit,
        thresholds=thresholds,
        window=window,
    )
    status = grade(_last(ranked[0][1]), warn=limits[0], fail=limits[1])
    if len(matrix) == 1:
        text = f"1 series over {span}: {_series_stats(ranked[0][1], unit)}"
        return DiagnosticResult(title, status, text, image_png=png, source=SOURCE)
    shown = f"; top {len(ranked)} shown" if len(matrix) > len(ranked) else ""
    highest = f"highest last {format_value(_last(ranked[0][1]), unit)}" + _about(names[0], title)
    text = f"{len(matrix)} series over {span}; {highest}{shown}"
    rows = tuple(
        (name, *_last_and_max(points, unit))
        for name, (_, points) in zip(names, ranked, strict=True)
    )
    table = Table(("series", "last", "max"), rows)
    return DiagnosticResult(title, status, text, table, image_png=png, source=SOURCE)


def _about(name: str, title: str) -> str:
    return "" if name == title else f" ({name})"


def _last(points: Sequence[Point]) -> float:
    """The latest value that is a number, or NaN."""
    return next((v for _, v in reversed(points) if not math.isnan(v)), math.nan)


def _sort_key(value: float) -> tuple[bool, float]:
    return math.isnan(value), -value if not math.isnan(value) else 0.0


def _series_stats(points: Sequence[Point], unit: str) -> str:
    last, highest = _last_and_max(points, unit)
    return f"last {last}, max {highest}" if highest else "no numbers"


def _last_and_max(points: Sequence[Point], unit: str) -> tuple[str, str]:
    numbers = [v for _, v in points if not math.isnan(v)]
    if not numbers:
        return "", ""
    return format_value(numbers[-1], unit), format_value(max(numbers), unit)


def _duration_text(seconds: float) -> str:
    whole = round(seconds)
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h")]
    parts += [(whole % 3600 // 60, "m"), (whole % 60, "s")]
    return "".join(f"{n}{u}" for n, u in parts if n) or "0s"


def render_graph(
    series: Sequence[Series],
    *,
    title: str,
    marker: datetime | None = None,
    unit: str = "",
    thresholds: Sequence[Threshold] = (),
    window: tuple[datetime, datetime] | None = None,
) -> bytes:
    """A 1000x500 PNG line chart: one line per series (the first 8), UTC time axis.

    ``marker`` (when the alert began) is a dashed vertical line labelled "alert fired HH:MM";
    ``thresholds`` are dotted horizontal lines; ``window`` fixes the time range shown.
    """
    with RENDER_LOCK:
        figure = Figure(figsize=_SIZE_IN, dpi=_DPI, layout="constrained")
        axes = figure.add_subplot()
        axes.set_prop_cycle(color=_SERIES_COLOURS)
        for label, points in series[:MAX_SERIES]:
            axes.plot(*_with_gaps(points), linewidth=2.2, label=_legend_label(label, title))
        _style_axes(axes, title=title, unit=unit, empty=not series)
        span = _time_range(series, marker, window)
        _time_axis(axes, span)
        _draw_guides(axes, marker=marker, span=span, unit=unit, thresholds=thresholds)
        handles, labels = axes.get_legend_handles_labels()
        if handles:
            longest = max(len(label) for label in labels)
            fit = int(_SIZE_IN[0] * _DPI // ((longest + 6) * _LEGEND_CHAR_PX))  # + the handle
            columns = max(1, min(4, len(handles), fit))
            figure.legend(handles, labels, loc="outside lower center", ncols=columns, fontsize=12)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
        return buffer.getvalue()


def _with_gaps(points: Sequence[Point]) -> tuple[list[float], list[float]]:
    """Times and values, with a NaN where samples are missing so no line bridges a gap."""
    times = [t for t, _ in points]
    values = [v if math.isfinite(v) else math.nan for _, v in points]  # ±Inf cannot be drawn
    if len(points) < 3:
        return times, values
    gaps = [b - a for a, b in itertools.pairwise(times)]
    usual = statistics.median(gaps)
    out_times, out_values = times[:1], values[:1]
    for index, gap in enumerate(gaps, start=1):
        if usual > 0 and gap > 2 * usual:
            out_times.append(times[index] - gap / 2)
            out_values.append(math.nan)
        out_times.append(times[index])
        out_values.append(values[index])
    return out_times, out_values


def _legend_label(label: str, title: str) -> str:
    label = cut(label, _LEGEND_CHARS) or cut(title, _LEGEND_CHARS) or "value"
    # Matplotlib leaves labels that start with an underscore out of the legend.
    return " " + label if label.startswith("_") else label


def _seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _draw_guides(
    axes: Axes,
    *,
    marker: datetime | None,
    span: tuple[float, float] | None,
    unit: str,
    thresholds: Sequence[Threshold],
) -> None:
    """Threshold lines and the alert-start line, each labelled on the plot (not the legend)."""
    for name, value in thresholds:
        colour = _THRESHOLD_COLOURS.get(name, "tab:gray")
        axes.axhline(value, color=colour, linestyle=":", linewidth=2.5)
        label = f"{name} {format_value(value, unit)}"
        where = axes.get_yaxis_transform()
        axes.text(0.995, value, label, transform=where, color=colour, **_THRESHOLD_TEXT)
    if marker is None or span is None or not span[0] <= _seconds(marker) <= span[1]:
        return
    at = _seconds(marker)
    axes.axvline(at, color="black", linestyle="--", linewidth=2)
    on_right = span[1] > span[0] and (at - span[0]) / (span[1] - span[0]) > 0.8
    fired = f"alert fired {datetime.fromtimestamp(at, UTC):%H:%M}"
    text, align = (f"{fired} ", "right") if on_right else (f" {fired}", "left")
    where = axes.get_xaxis_transform()
    axes.text(at, 0.98, text, transform=where, ha=align, va="top", fontsize=13, bbox=_LABEL_BOX)


def _style_axes(axes: Axes, *, title: str, unit: str, empty: bool) -> None:
    axes.set_title(title, fontsize=18, loc="left")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v)))
    if unit:
        axes.set_ylabel(unit, fontsize=13)
    axes.tick_params(labelsize=13)
    axes.grid(visible=True, alpha=0.3)
    if empty:
        axes.set_yticks([])
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", fontsize=20)


def _time_range(
    series: Sequence[Series], marker: datetime | None, window: tuple[datetime, datetime] | None
) -> tuple[float, float] | None:
    if window is not None and window[1] > window[0]:
        return _seconds(window[0]), _seconds(window[1])
    times = [t for _, points in series[:MAX_SERIES] for t, _ in points]
    times += [_seconds(marker)] if marker is not None else []
    return (min(times), max(times)) if times else None


def _time_axis(axes: Axes, span: tuple[float, float] | None) -> None:
    """Ticks on round UTC times (every 5 min, 1 h, ...), at most about seven of them."""
    if span is None:
        axes.set_xticks([])
        return
    start, end = span
    step = next((s for s in _TICK_STEPS_S if (end - start) / s <= _MAX_TICKS), None)
    step = step or 86400 * math.ceil((end - start) / 86400 / _MAX_TICKS)
    shape = "%H:%M:%S" if step < 60 else "%H:%M" if end - start <= 86400 else "%b %d %H:%M"
    axes.xaxis.set_major_locator(MultipleLocator(step))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _pos: datetime.fromtimestamp(x, UTC).strftime(shape))
    )
    if end > start:
        axes.set_xlim(start, end)
    day = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d")
    axes.set_xlabel(f"time (UTC, {day})", fontsize=13)
