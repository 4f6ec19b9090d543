"""A tiny server-rendered SVG bar chart of usage over time.

The team chose server-rendered SVG over a JavaScript chart library: it works offline and needs
no build step. The admin (meters, dashboard, invoices) and the customer portal share it, so it
lives in the plumbing. It is a pure function (a series in, markup out: no ORM, no clock), and
every piece of text goes through `format_html`, so a meter named `<script>` is shown as text,
never run.

Geometry is computed with Decimal like the values themselves; it is layout, not money, but that
keeps one number type from the rollups to the pixels.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from billing_site.formatting import format_value

WIDTH = 720
HEIGHT = 240
MARGIN_LEFT = 72  # room for the value labels
MARGIN_RIGHT = 8
MARGIN_TOP = 16
MARGIN_BOTTOM = 28  # room for the time labels
MAX_TIME_LABELS = 6
BAR_COLOR = "#417690"  # the admin's primary blue; CSS on `.usage-chart .bar` can override it


def _px(value: Decimal) -> str:
    return f"{value:.2f}"


def bar_chart_svg(
    series: Sequence[tuple[dt.datetime, Decimal]],
    *,
    title: str,
    label_format: str = "%Y-%m-%d %H:%M",
    empty_message: str = "No usage in this period",
) -> SafeString:
    """One bar per (window start, value), with a <title> tooltip per bar.

    The value axis always includes zero, so a negative window (a correction) is drawn below the
    baseline. An empty series renders `empty_message` instead of bars; a series of zeros
    renders its (flat) bars and the message.
    """
    if not series:
        return format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img" '
            'aria-label="{}: {}" viewBox="0 0 {} {}" width="100%" style="max-width: {}px">'
            "<title>{}</title>"
            '<text x="{}" y="{}" text-anchor="middle" fill="#666">{}</text></svg>',
            title,
            empty_message,
            WIDTH,
            HEIGHT,
            WIDTH,
            title,
            WIDTH // 2,
            HEIGHT // 2,
            empty_message,
        )

    values = [value for _, value in series]
    top = max(max(values), Decimal(0))
    bottom = min(min(values), Decimal(0))
    span = (top - bottom) or Decimal(1)
    plot_width = Decimal(WIDTH - MARGIN_LEFT - MARGIN_RIGHT)
    plot_height = Decimal(HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)
    slot = plot_width / len(series)
    bar_width = max(slot * Decimal("0.8"), Decimal(1))
    baseline = MARGIN_TOP + plot_height * top / span

    bars = []
    for start, value in series:
        index = len(bars)
        height = plot_height * abs(value) / span
        y = baseline - height if value >= 0 else baseline
        bars.append(
            (
                _px(MARGIN_LEFT + slot * index + (slot - bar_width) / 2),
                _px(y),
                _px(bar_width),
                _px(height),
                f"{start:{label_format}} UTC",
                format_value(value),
            )
        )

    every = math.ceil(len(series) / MAX_TIME_LABELS)
    time_labels = [
        (_px(MARGIN_LEFT + slot * index + slot / 2), HEIGHT - 8, f"{start:{label_format}}")
        for index, (start, _) in enumerate(series)
        if index % every == 0
    ]
    value_labels = [(_px(MARGIN_TOP), format_value(top)), (_px(baseline), "0")]
    if bottom < 0:
        value_labels.append((_px(MARGIN_TOP + plot_height), format_value(bottom)))
    if top == 0:
        value_labels = value_labels[1:]  # "0" is already the top line

    first, last = series[0][0], series[-1][0]
    description = (
        f"{title}: {len(series)} bars from {first:{label_format}} to {last:{label_format}} UTC, "
        f"highest {format_value(max(values))}"
    )
    no_usage = (
        format_html(
            '<text x="{}" y="{}" text-anchor="middle" fill="#666">{}</text>',
            MARGIN_LEFT + int(plot_width) // 2,
            MARGIN_TOP + int(plot_height) // 2,
            empty_message,
        )
        if all(value == 0 for value in values)
        else ""
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img" aria-label="{}" '
        'viewBox="0 0 {} {}" width="100%" style="max-width: {}px">'
        "<title>{}</title>"
        '<g class="value-axis" font-size="11" fill="#666" text-anchor="end">{}</g>'
        '<line class="baseline" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/>'
        '<g class="bars" fill="{}">{}</g>'
        '<g class="time-axis" font-size="11" fill="#666" text-anchor="middle">{}</g>'
        "{}</svg>",
        description,
        WIDTH,
        HEIGHT,
        WIDTH,
        title,
        format_html_join(
            "",
            '<text x="{}" y="{}" dy="4">{}</text>',
            ((MARGIN_LEFT - 6, y, label) for y, label in value_labels),
        ),
        MARGIN_LEFT,
        WIDTH - MARGIN_RIGHT,
        _px(baseline),
        _px(baseline),
        BAR_COLOR,
        format_html_join(
            "",
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
            bars,
        ),
        format_html_join("", '<text x="{}" y="{}">{}</text>', time_labels),
        no_usage,
    )
