"""Charts drawn on the server as SVG: readable without JavaScript, scaled to any screen by their viewBox, and each
with a title and a text description for screen readers (the page shows the same figures as a table too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
LABEL_WIDTH = 150
BAR_HEIGHT = 22
GAP = 10


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


def _svg(height: int, title: str, description: str, body: str, chart: str) -> Markup:
    return Markup(
        f'<svg class="chart" data-chart="{escape(chart)}" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{chart}-title {chart}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart}-title">{escape(title)}</title><desc id="{chart}-desc">{escape(description)}</desc>{body}</svg>'
    )


def stacked_bars(chart: str, title: str, rows: Sequence[tuple[str, dict[str, int]]], series: Sequence[Series]) -> Markup:
    """One horizontal bar per row, split by series, with a legend underneath."""
    top = 8
    height = top + len(rows) * (BAR_HEIGHT + GAP) + 40
    biggest = max([sum(counts.values()) for _, counts in rows] + [1])
    scale = (WIDTH - LABEL_WIDTH - 60) / biggest
    parts: list[str] = []
    described: list[str] = []
    for index, (label, counts) in enumerate(rows):
        y = top + index * (BAR_HEIGHT + GAP)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT * 0.7:.1f}" text-anchor="end" class="chart-label">{escape(label)}</text>'
        )
        x = float(LABEL_WIDTH)
        for s in series:
            n = counts.get(s.key, 0)
            if n:
                w = n * scale
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{BAR_HEIGHT}" fill="{s.color}">'
                    f"<title>{escape(label)} · {escape(s.label)}：{n}</title></rect>"
                )
                x += w
        total = sum(counts.values())
        parts.append(f'<text x="{x + 6:.1f}" y="{y + BAR_HEIGHT * 0.7:.1f}" class="chart-value">{total}</text>')
        described.append(f"{label} {total}（" + "，".join(f"{s.label} {counts.get(s.key, 0)}" for s in series) + "）")
    legend_y = top + len(rows) * (BAR_HEIGHT + GAP) + 14
    x = 8.0
    for s in series:
        parts.append(f'<rect x="{x:.1f}" y="{legend_y - 10}" width="12" height="12" fill="{s.color}"/>')
        parts.append(f'<text x="{x + 16:.1f}" y="{legend_y}" class="chart-legend">{escape(s.label)}</text>')
        x += 16 + 14 * len(s.label) + 18
    if not rows:
        parts.append(f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" class="chart-label">暂无数据</text>')
    return _svg(height, title, "；".join(described) or "暂无数据", "".join(parts), chart)


def line(chart: str, title: str, points: Sequence[tuple[str, int]], color: str = "#c0392b") -> Markup:
    """A line over time with a dot and the value at every point, and the labels under the axis."""
    height, left, right, top, bottom = 220, 40, 32, 16, 40
    biggest = max([v for _, v in points] + [1])
    step = (WIDTH - left - right) / max(len(points) - 1, 1)

    def y_of(value: int) -> float:
        return top + (height - top - bottom) * (1 - value / biggest)

    coords = [(left + i * step, y_of(v)) for i, (_, v) in enumerate(points)]
    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{WIDTH - right}" y2="{height - bottom}" class="chart-axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="chart-label">{biggest}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="chart-label">0</text>',
    ]
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
    for (label, value), (x, y) in zip(points, coords, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{escape(label)}：{value}</title></circle>')
        parts.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" class="chart-value">{value}</text>')
    every = max(1, len(points) // 6)
    for i, (label, _) in enumerate(points):
        if i % every == 0 or i == len(points) - 1:
            x = left + i * step
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle" class="chart-label">{escape(label)}</text>')
    described = "；".join(f"{label} {value}" for label, value in points)
    return _svg(height, title, described or "暂无数据", "".join(parts), chart)


def progress(chart: str, title: str, rows: Sequence[tuple[str, int, int]]) -> Markup:
    """Done out of planned, one bar per row (the plans' progress)."""
    series = [Series("done", "已完成", "#27ae60"), Series("left", "未完成", "#d5dbdb")]
    return stacked_bars(chart, title, [(label, {"done": done, "left": max(planned - done, 0)}) for label, planned, done in rows], series)
