"""Grouped bar charts as inline SVG (no JavaScript): a title, a description, and the same numbers as a table.

Pure: numbers in, markup out. Colours come from `currentColor` and CSS variables with fallbacks, so a chart
reads in light and dark mode; the SVG scales to its box (viewBox, width 100%), so it fits 375 px.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 44, 36, 12


@dataclass(frozen=True)
class Chart:
    """A chart's data: one label per group (a week, an issue), one list of numbers per series."""

    key: str
    title: str
    description: str
    labels: list[str]
    series: dict[str, list[int]]

    @property
    def peak(self) -> int:
        """The largest number (at least 1, the top of the axis)."""
        return max([1, *(v for values in self.series.values() for v in values)])


def svg(chart: Chart) -> Markup:
    """The chart as an accessible SVG element: <title> and <desc>, bars per group, a y axis and a legend."""
    groups, names = max(1, len(chart.labels)), list(chart.series)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    group_w = plot_w / groups
    bar_w = max(1.0, group_w * 0.8 / max(1, len(names)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 20 * len(names)}" width="100%" '
        f'role="img" aria-labelledby="{chart.key}-t {chart.key}-d" style="max-width:{WIDTH}px;color:inherit">',
        f'<title id="{chart.key}-t">{escape(chart.title)}</title>',
        f'<desc id="{chart.key}-d">{escape(chart.description)}</desc>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="currentColor" stroke-opacity=".5"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="currentColor" '
        'stroke-opacity=".5"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" font-size="11" fill="currentColor">{chart.peak}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="11" fill="currentColor">0</text>',
    ]
    for g, label in enumerate(chart.labels):
        x0 = LEFT + g * group_w + group_w * 0.1
        for s, name in enumerate(names):
            value = chart.series[name][g]
            h = plot_h * value / chart.peak
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}" data-value="{value}"><title>{escape(label)} · '
                f"{escape(name)}: {value}</title></rect>"
            )
        if groups <= 12 or g % max(1, groups // 8) == 0:
            parts.append(
                f'<text x="{x0 + group_w * 0.4:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" font-size="10" '
                f'fill="currentColor">{escape(label)}</text>'
            )
    for s, name in enumerate(names):
        y = HEIGHT + 20 * s
        parts.append(f'<rect x="{LEFT}" y="{y - 9}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{LEFT + 16}" y="{y}" font-size="12" fill="currentColor">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def table(chart: Chart) -> Markup:
    """The chart's numbers as an HTML table (a row per group, a column per series)."""
    head = "".join(f"<th>{escape(name)}</th>" for name in chart.series)
    rows = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(f'<td class="n">{values[g]}</td>' for values in chart.series.values())
        + "</tr>"
        for g, label in enumerate(chart.labels)
    )
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<table class="admin"><caption>{escape(chart.title)}</caption><thead><tr><th></th>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
