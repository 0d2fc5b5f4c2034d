"""`python -m runtime.report SUMMARY.json... --out report.html`: nights side by side, as one HTML file to look at.

Label shares and top-score histograms of the runs whose `--summary-json` files are given, in the order given. The
plots are inline SVG drawn here, so the file opens offline, in any browser, with nothing installed beside the runtime.

Exit codes (runtime/cli.py): 0 written; 2 bad input (one `error:` line); 75 a storage failure a retry may cure.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from runtime.cli import OneLineParser, exit_code
from runtime.errors import DataError, ScorerError
from runtime.files.storage import atomic_output, check_writable, locate, read_small
from runtime.scoring.distribution import SCORE_BINS, Distribution
from runtime.scoring.drift import summary_of

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
WIDTH = 640
BAR = 22  # height of one night's bar in the label-share plot
PLOT_HEIGHT = 160  # of a histogram's bars
PLOT_TOP = 10


@dataclass
class Night:
    """One run's summary as the report shows it."""

    source: str
    summary: dict[str, Any]
    distribution: Distribution

    @property
    def name(self) -> str:
        """The summary's file name: nightly jobs name them by date (score-2026-12-08.json)."""
        return self.source.rstrip("/").rsplit("/", 1)[-1]


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def svg(plot: str, night: str, height: int, body: list[str]) -> str:
    """An inline SVG element; `data-plot` and `data-night` say what it draws."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'data-plot="{plot}" data-night="{escape(night)}" role="img">' + "".join(body) + "</svg>"
    )


def rect(x: float, y: float, width: float, height: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{fill}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def text(x: float, y: float, words: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}">{escape(words)}</text>'


def legend(labels: Sequence[str]) -> str:
    items = (
        f'<span class="key"><i style="background:{colour(index)}"></i>{escape(label)}</span>'
        for index, label in enumerate(labels)
    )
    return f'<p class="legend">{"".join(items)}</p>'


def label_shares_svg(nights: list[Night], labels: Sequence[str]) -> str:
    """One stacked bar per night: each label's share of the rows that have a score."""
    left, right = 150, WIDTH - 10
    body = []
    for row, night in enumerate(nights):
        y = 10 + row * (BAR + 8)
        body.append(text(left - 6, y + BAR * 0.7, night.name, anchor="end"))
        shares = night.distribution.as_dict()["label_shares"]
        x = float(left)
        for index, label in enumerate(labels):
            width = (shares.get(label) or 0) * (right - left)
            if width:
                body.append(rect(x, y, width, BAR, colour(index), f"{label}: {shares[label]:.1%}"))
                if width > 40:
                    body.append(text(x + width / 2, y + BAR * 0.7, f"{shares[label]:.1%}", anchor="middle"))
            x += width
        if not night.distribution.scored_rows:
            body.append(text(left + 4, y + BAR * 0.7, "no rows scored"))
    return svg("label-shares", "all", 20 + len(nights) * (BAR + 8), body)


def histogram_svg(night: Night, labels: Sequence[str]) -> str:
    """The night's top-score histogram, 10 bins on [0, 1], each bin's bar stacked by label (as shares of rows)."""
    distribution = night.distribution
    if distribution.histograms is None or not distribution.scored_rows:
        why = "raw logits: no score histogram" if distribution.histograms is None else "no rows scored"
        return svg("score-histogram", night.name, 40, [text(10, 25, why)])
    left, bottom = 40, PLOT_TOP + PLOT_HEIGHT
    step = (WIDTH - left - 10) / SCORE_BINS
    total = distribution.scored_rows
    body = [text(left - 4, PLOT_TOP + 8, "100%", anchor="end"), text(left - 4, bottom, "0%", anchor="end")]
    for bin_ in range(SCORE_BINS):
        x, y = left + bin_ * step, float(bottom)
        for index, (label, histogram) in enumerate(zip(labels, distribution.histograms)):
            height = histogram[bin_] / total * PLOT_HEIGHT
            if height:
                y -= height
                tip = (
                    f"{label}, top score {bin_ / SCORE_BINS:.1f}-{(bin_ + 1) / SCORE_BINS:.1f}: {histogram[bin_]} rows"
                )
                body.append(rect(x + 2, y, step - 4, height, colour(index), tip))
        body.append(text(x, bottom + 14, f"{bin_ / SCORE_BINS:.1f}", anchor="middle"))
    body.append(text(left + SCORE_BINS * step, bottom + 14, "1.0", anchor="middle"))
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="#333"/>')
    return svg("score-histogram", night.name, bottom + 22, body)


def figures_row(night: Night) -> str:
    """The night's counts and drift figures, as a table row."""
    summary, raw = night.summary, night.distribution.as_dict()
    low = raw["low_confidence_share"]
    drift = summary.get("drift") or {}
    psi = drift.get("score_psi")
    cells = [
        night.name,
        summary.get("finished_at", ""),
        summary.get("rows", ""),
        summary.get("null_rows", ""),
        summary.get("truncated_rows", ""),
        summary.get("chunked_rows", ""),
        "" if low is None else f"{low:.1%}",
        "" if psi is None else f"{psi:.3f}" + (" (shifted)" if drift.get("shifted") else ""),
    ]
    return "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in cells) + "</tr>"


def render(nights: list[Night]) -> str:
    """The whole report: a table of figures, the label shares across nights, then one histogram per night."""
    labels = next((night.distribution.labels for night in nights if night.distribution.labels), ())
    low_below = nights[0].distribution.as_dict()["low_confidence_below"]
    header = [
        "night",
        "finished at",
        "rows",
        "null",
        "truncated",
        "chunked",
        f"top score < {low_below}",
        "score PSI vs baseline",
    ]
    histograms = "".join(
        f"<h3>{escape(night.name)}</h3><p class='source'>{escape(night.source)}</p>{histogram_svg(night, labels)}"
        for night in nights
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Scores across nights</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
.legend .key {{ margin-right: 1.5em; }} .legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; }}
.source {{ color: #777; font-size: small; margin: 0; }}
</style></head><body>
<h1>Scores across nights</h1>
<table><tr>{"".join(f"<th>{escape(cell)}</th>" for cell in header)}</tr>{"".join(map(figures_row, nights))}</table>
<h2>Label shares</h2>
<p>Each label's share of the rows that have a score (null texts have none).</p>
{legend(labels)}{label_shares_svg(nights, labels)}
<h2>Top-score histograms</h2>
<p>Rows by their chosen label's score, in {SCORE_BINS} bins on [0, 1], as shares of the night's scored rows.</p>
{legend(labels)}{histograms}
</body></html>
"""


def read_nights(paths: Sequence[str]) -> list[Night]:
    """Each summary read and checked: all nights that scored rows must share one set of labels."""
    nights = [Night(path, *summary_of(read_small(locate(path)), path)) for path in paths]
    scored = [night for night in nights if night.distribution.labels]
    for night in scored[1:]:
        if night.distribution.labels != scored[0].distribution.labels:
            raise DataError(
                f"{night.source} scored labels {list(night.distribution.labels)}, {scored[0].source} "
                f"{list(scored[0].distribution.labels)}: not one model's nights"
            )
    return nights


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m runtime.report", description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", metavar="SUMMARY_JSON", help="runs' --summary-json files, oldest first")
    parser.add_argument("--out", required=True, help="the HTML file to write (a path or a URI)")
    args = parser.parse_args(argv)
    try:
        out = locate(args.out)
        check_writable(out)
        page = render(read_nights(args.summaries))
        with atomic_output(out) as stream:
            stream.write(page.encode())
    except ScorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
