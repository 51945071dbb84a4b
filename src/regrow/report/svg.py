"""Charts as inline SVG text: no script, no library, every label escaped.

Each function returns one ``<svg>`` element sized by its viewBox (it scales to its container).
"""

from __future__ import annotations

from html import escape

W, H = 360, 220  # viewBox of every chart
L, R, T, B = 44, 18, 14, 38  # margins: left (y labels), right, top, bottom (x labels)

STATUS_COLORS = {"solved": "#2e9d5b", "failed": "#d64545", "malformed": "#8a8f98", "timeout": "#e08a1e",
                 "crashed": "#8e44ad"}
SERIES = ["#3b6fd4", "#e0742b", "#2e9d5b", "#b0407a", "#7a5cc7", "#4aa3a8", "#a08a2e", "#555b66"]


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, "#555b66")


def _open(title: str) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _x(v: float, lo: float, hi: float) -> float:
    return L + (v - lo) / ((hi - lo) or 1) * (W - L - R)


def _y(v: float, lo: float, hi: float) -> float:
    return H - B - (v - lo) / ((hi - lo) or 1) * (H - T - B)


def _axes(parts: list[str], *, y_max: float, y_ticks: list[float], y_label, x_title: str) -> None:
    for t in y_ticks:
        y = _y(t, 0, y_max)
        parts.append(f'<line x1="{L}" x2="{W - R}" y1="{_fmt(y)}" y2="{_fmt(y)}" class="grid"/>'
                     f'<text x="{L - 6}" y="{_fmt(y + 4)}" text-anchor="end">{escape(y_label(t))}</text>')
    parts.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" class="axis"/>'
                 f'<text x="{(L + W - R) / 2}" y="{H - 4}" text-anchor="middle" class="title">{escape(x_title)}</text>')


def _pct(t: float) -> str:
    return f"{100 * t:.0f}%"


def line_chart(points: list[tuple[float, float]], *, title: str, x_title: str) -> str:
    """Values in [0, 1] over integer x (pass@k over k)."""
    parts = _open(title)
    _axes(parts, y_max=1.0, y_ticks=[0, 0.25, 0.5, 0.75, 1.0], y_label=_pct, x_title=x_title)
    if not points:
        return "".join(parts + ['<text x="50%" y="50%" text-anchor="middle">no data</text></svg>'])
    xs = [p[0] for p in points]
    lo, hi = min(xs), max(xs)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    coords = [(_x(x, lo, hi), _y(y, 0, 1)) for x, y in points]
    for x in sorted(set(xs)):
        parts.append(f'<text x="{_fmt(_x(x, lo, hi))}" y="{H - B + 14}" text-anchor="middle">{escape(_fmt(x))}</text>')
    if len(coords) > 1:
        parts.append('<polyline class="line" fill="none" stroke="#3b6fd4" stroke-width="2" points="'
                     + " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in coords) + '"/>')
    for (a, b), (x, y) in zip(coords, points):
        parts.append(f'<circle cx="{_fmt(a)}" cy="{_fmt(b)}" r="4" fill="#3b6fd4">'
                     f'<title>{escape(f"k={_fmt(x)}: {100 * y:.1f}%")}</title></circle>'
                     f'<text x="{_fmt(a)}" y="{_fmt(b - 8)}" text-anchor="middle" class="value">{100 * y:.0f}%</text>')
    return "".join(parts + ["</svg>"])


def _count_ticks(top: int) -> list[float]:
    step = max(1, -(-top // 4))
    return [float(t) for t in range(0, top + 1, step)]


def histogram(values: list[float], *, title: str, x_title: str, bins: int = 10) -> str:
    """Counts of values in [0, 1] in ``bins`` equal bins."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    top = max(counts + [1])
    parts = _open(title)
    _axes(parts, y_max=top, y_ticks=_count_ticks(top), y_label=lambda t: f"{t:.0f}", x_title=x_title)
    width = (W - L - R) / bins
    for i, c in enumerate(counts):
        x, y = L + i * width, _y(c, 0, top)
        label = f"{100 * i / bins:.0f}–{100 * (i + 1) / bins:.0f}%: {c}"
        parts.append(f'<rect x="{_fmt(x + 1)}" y="{_fmt(y)}" width="{_fmt(width - 2)}" height="{_fmt(H - B - y)}" '
                     f'fill="#3b6fd4"><title>{escape(label)}</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        parts.append(f'<text x="{_fmt(L + i * width)}" y="{H - B + 14}" text-anchor="middle">{100 * i // bins}%</text>')
    return "".join(parts + ["</svg>"])


def stacked_bars(groups: list[tuple[str, dict[str, int]]], *, title: str, x_title: str) -> str:
    """One bar per group (a turn), stacked by verdict status."""
    top = max([sum(c.values()) for _, c in groups] + [1])
    parts = _open(title)
    _axes(parts, y_max=top, y_ticks=_count_ticks(top), y_label=lambda t: f"{t:.0f}", x_title=x_title)
    slot = (W - L - R) / max(1, len(groups))
    bar = min(slot * 0.6, 56)
    for i, (label, counts) in enumerate(groups):
        x, base = L + i * slot + (slot - bar) / 2, 0
        for status, n in sorted(counts.items(), key=lambda kv: list(STATUS_COLORS).index(kv[0])
                                if kv[0] in STATUS_COLORS else 99):
            y0, y1 = _y(base, 0, top), _y(base + n, 0, top)
            parts.append(f'<rect x="{_fmt(x)}" y="{_fmt(y1)}" width="{_fmt(bar)}" height="{_fmt(y0 - y1)}" '
                         f'fill="{status_color(status)}"><title>{escape(f"{label}: {status} {n}")}</title></rect>')
            base += n
        parts.append(f'<text x="{_fmt(x + bar / 2)}" y="{H - B + 14}" text-anchor="middle">{escape(label)}</text>')
    return "".join(parts + ["</svg>"])


def scatter(series: list[tuple[str, list[tuple[float, float, str]]]], *, title: str, x_title: str,
            y_title: str) -> str:
    """Points in [0, 1]², one colour per series; each point carries a tooltip label."""
    parts = _open(title)
    _axes(parts, y_max=1.0, y_ticks=[0, 0.25, 0.5, 0.75, 1.0], y_label=_pct, x_title=x_title)
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{_fmt(_x(t, 0, 1))}" y="{H - B + 14}" text-anchor="middle">{_pct(t)}</text>')
    parts.append(f'<text x="10" y="{(T + H - B) / 2}" text-anchor="middle" class="title" '
                 f'transform="rotate(-90 10 {(T + H - B) / 2})">{escape(y_title)}</text>')
    for i, (_, points) in enumerate(series):
        color = SERIES[i % len(SERIES)]
        for x, y, label in points:
            parts.append(f'<circle cx="{_fmt(_x(x, 0, 1))}" cy="{_fmt(_y(y, 0, 1))}" r="4" fill="{color}" '
                         f'fill-opacity="0.6" stroke="{color}"><title>{escape(label)}</title></circle>')
    return "".join(parts + ["</svg>"])


def legend(names: list[str]) -> str:
    """HTML legend matching `scatter`'s colours."""
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{SERIES[i % len(SERIES)]}"></i>{escape(n)}</span>' for i, n in enumerate(names)
    ) + "</div>"


def funnel(stages: list[tuple[str, int]], *, title: str) -> str:
    """Horizontal bars, one per stage, widths proportional to the first stage."""
    top = max([n for _, n in stages] + [1])
    row, label_w = 30, 86
    height = T + row * len(stages)
    parts = [f'<svg class="chart funnel" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, n) in enumerate(stages):
        y, width = T / 2 + i * row, max(2.0, n / top * (W - label_w - 50))
        parts.append(f'<text x="{label_w - 8}" y="{_fmt(y + 16)}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{_fmt(y + 3)}" width="{_fmt(width)}" height="{row - 8}" rx="3" '
                     f'fill="{SERIES[0]}" fill-opacity="{1 - 0.22 * i:.2f}"><title>{escape(f"{label}: {n}")}</title></rect>'
                     f'<text x="{_fmt(label_w + width + 6)}" y="{_fmt(y + 16)}" class="value">{n}</text>')
    return "".join(parts + ["</svg>"])
