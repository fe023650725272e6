"""Draw the peers benchmark as an SVG bar chart: time per workload relative to Core.

Reads ``bench/results/peers-<backend>.json`` (written by ``bench/run.sh``) and writes
``docs/performance.svg``, with nothing but the standard library, so that the docs site can
show the latest results offline. ``tests/test_docs_site.py`` checks that the committed chart
is the one these results draw, so rerunning the benchmark means rerunning this script:

    .venv/bin/python -m bench.chart
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUTPUT = ROOT / "docs" / "performance.svg"
BACKENDS = ("sqlite-memory", "postgresql")
#: get_hot is left out: Core has no identity map, so its "get" is a query each time
WORKLOADS = ("insert", "load_all", "get_cold", "update_all", "delete_all", "parent_child")
#: (implementation key in the results, label, colour)
SERIES = (
    ("orm", "SQLAlchemy ORM", "#d95f02"),
    ("typed_session", "typed_session", "#1b9e77"),
)

WIDTH = 760
LABEL_W = 110
BAR_H = 12
GAP = 10
SCALE_MAX = 20.0  # ratios beyond it are drawn to the edge, their value written beside


def ratios(path: Path) -> dict[str, dict[str, float]]:
    """Workload -> implementation -> median time relative to Core's."""
    data = json.loads(path.read_text(encoding="utf-8"))
    workloads = data["results"][0]["workloads"]
    out: dict[str, dict[str, float]] = {}
    for name in WORKLOADS:
        impls = workloads[name]["impls"]
        core = impls["core"]["median"]
        out[name] = {key: impls[key]["median"] / core for key, _, _ in SERIES}
    return out


def draw(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """The SVG text of the chart, one panel per backend."""
    plot_w = WIDTH - LABEL_W - 70
    rows: list[str] = []
    y = 40
    legend_x = LABEL_W
    for _, label, colour in SERIES:
        rows.append(f'<rect x="{legend_x}" y="12" width="12" height="12" fill="{colour}"/>')
        rows.append(f'<text x="{legend_x + 16}" y="22">{escape(label)}</text>')
        legend_x += 150
    rows.append(f'<text x="{legend_x}" y="22">time / Core (1.0 = Core; lower is better)</text>')
    for backend, table in results.items():
        y += 16
        rows.append(f'<text x="4" y="{y}" font-weight="bold">{escape(backend)}</text>')
        y += 8
        top = y
        for workload, values in table.items():
            rows.append(f'<text x="4" y="{y + BAR_H + 4}">{escape(workload)}</text>')
            for key, _, colour in SERIES:
                value = values[key]
                width = plot_w * min(value, SCALE_MAX) / SCALE_MAX
                rows.append(
                    f'<rect class="bar" x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR_H}" '
                    f'fill="{colour}"/>'
                )
                rows.append(f'<text x="{LABEL_W + width + 4:.1f}" y="{y + 10}">{value:.2f}x</text>')
                y += BAR_H
            y += GAP
        core_x = LABEL_W + plot_w / SCALE_MAX
        rows.append(
            f'<line x1="{core_x:.1f}" y1="{top - 2}" x2="{core_x:.1f}" y2="{y - GAP + 2}" '
            'stroke="#555" stroke-dasharray="3,2"/>'
        )
        y += 6
    height = y + 10
    body = "\n  ".join(rows)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">\n'
        f"  <title>peers benchmark: time relative to SQLAlchemy Core</title>\n"
        f'  <rect width="{WIDTH}" height="{height}" fill="white"/>\n'
        f"  {body}\n"
        "</svg>\n"
    )


def render(results_dir: Path = RESULTS) -> str:
    """The chart of the results in ``results_dir``."""
    return draw({b: ratios(results_dir / f"peers-{b}.json") for b in BACKENDS})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    args.output.write_text(render(args.results), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
