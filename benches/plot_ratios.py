#!/usr/bin/env python3
"""Draws benches/plots/ratios.svg from benches/plots/ratios.csv: one bar per figure, our speed
divided by the peer's in the same run (log scale, 1x marked). No dependencies, so it runs
anywhere python3 does. Edit the CSV when BENCHMARKS.md's summary changes, then run this."""
import csv
import math
import os
import sys
from xml.sax.saxutils import escape

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "plots", "ratios.csv")
dst = os.path.join(here, "plots", "ratios.svg")
rows = list(csv.DictReader(open(src)))
if not rows:
    sys.exit("no rows in " + src)
W, left, right, bar, gap, top = 900, 330, 90, 18, 8, 40
H = top + len(rows) * (bar + gap) + 40
lo, hi = math.log10(min(0.5, 0.8 * min(float(r["ratio"]) for r in rows))), math.log10(max(50.0, max(float(r["ratio"]) for r in rows)))
x = lambda v: left + (math.log10(v) - lo) / (hi - lo) * (W - left - right)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{left}" y="20" font-size="14">speed against the peer in the same run (log scale; right of 1x = faster)</text>']
for t in [0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]:
    if lo <= math.log10(t) <= hi:
        out.append(f'<line x1="{x(t):.1f}" y1="{top-6}" x2="{x(t):.1f}" y2="{H-30}" stroke="{"#333" if t == 1 else "#ddd"}"/>')
        out.append(f'<text x="{x(t):.1f}" y="{H-14}" text-anchor="middle">{t:g}x</text>')
for i, r in enumerate(rows):
    v, y = float(r["ratio"]), top + i * (bar + gap)
    x0, x1 = sorted([x(1), x(v)])
    colour = "#2a7ab9" if v >= 1 else "#d0743c"
    out.append(f'<text x="{left-8}" y="{y+bar-5}" text-anchor="end">{escape(r["label"])} <tspan fill="#777">vs {escape(r["peer"])}</tspan></text>')
    out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1-x0,1):.1f}" height="{bar}" fill="{colour}"/>')
    out.append(f'<text x="{max(x1, x(1))+4:.1f}" y="{y+bar-5}">{v:g}x</text>')
out.append("</svg>")
open(dst, "w").write("\n".join(out) + "\n")
print("wrote", dst)
