"""``report.html``: the shoot at a glance, for people, readable offline.

One self-contained page (inline CSS, no scripts, no network) beside the
outputs it links to: counts, what was rejected and why, what a retoucher must
do, and a thumbnail per image with its face boxes and crop frames drawn over
it as SVG.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any, Iterable, Iterator

from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind, Status, Verdict
from pipeline.outputs.instructions import instruction_name, summary_line

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.muted{color:#666} table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
.counts{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.count{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:90px}
.count b{display:block;font-size:22px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.card svg{width:100%;height:auto;display:block;background:#eee}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;color:#fff}
.accept{background:#2e7d32}.flag{background:#ef6c00}.reject{background:#c62828}.failed{background:#555}
.ops{margin:6px 0 0;padding-left:18px;font-size:12px} .hand{color:#c62828}
.legend span{margin-right:14px} .path{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _overlay(r: ImageRecord) -> str:
    """SVG of the preview with face boxes (red: to brighten) and crop frames (turned)."""
    w, h = float(r.frame.width or 1), float(r.frame.height or 1)
    parts = [f'<svg viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="{_e(r.source_path)}">']
    if r.preview_path:
        parts.append(f'<image href="{_e(r.preview_path)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}"/>')
    stroke = max(2.0, w / 300)
    brighten = {op.params["face_index"]: op for op in r.operations if op.kind is OperationKind.BRIGHTEN_FACE}
    for i, f in enumerate(r.faces):
        op = brighten.get(i)
        color = "#e53935" if op else ("#9e9e9e" if f.too_small else "#43a047")
        parts.append(f'<rect x="{f.x:.0f}" y="{f.y:.0f}" width="{f.width:.0f}" height="{f.height:.0f}" fill="none" '
                     f'stroke="{color}" stroke-width="{stroke:.1f}"/>')
        if op:
            parts.append(f'<text x="{f.x:.0f}" y="{max(f.y - stroke * 2, stroke * 6):.0f}" fill="{color}" '
                         f'font-size="{stroke * 7:.0f}" font-weight="bold">+{op.params["ev"]:.1f} EV</text>')
    palette = ["#1e88e5", "#fdd835", "#8e24aa", "#00acc1"]
    for k, op in enumerate(o for o in r.operations if o.kind is OperationKind.CROP):
        x, y, bw, bh = op.params["box"]
        cx, cy = x + bw / 2, y + bh / 2
        angle = -float(op.params.get("angle_deg") or 0.0)  # SVG turns clockwise for positive angles
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{bw:.0f}" height="{bh:.0f}" fill="none" '
                     f'stroke="{palette[k % 4]}" stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 4:.0f}" '
                     f'transform="rotate({angle:.2f} {cx:.0f} {cy:.0f})"><title>{_e(op.params["aspect"])}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def render_report(records: list[ImageRecord], summary: dict[str, Any], chart_name: str | None) -> str:
    """The HTML text of the shoot report."""
    return "\n".join(report_parts(records, summary, chart_name))


def report_parts(records: Iterable[ImageRecord], summary: dict[str, Any], chart_name: str | None) -> Iterator[str]:
    """:func:`render_report`'s text, piece by piece (lines joined by newlines): written as it is made,
    a 10,000-image report never sits in memory whole."""
    # First pass: the counts and tables (small tuples); the second yields a card per image.
    originals = 0
    failed: list[tuple[str, str | None]] = []
    verdicts: Counter[Verdict] = Counter()
    reasons: Counter[str] = Counter()
    by_hand: list[tuple[str, str, str]] = []
    faces = 0
    for r in records:
        if r.duplicate_of is not None:
            continue
        originals += 1
        if r.status is Status.FAILED:
            failed.append((r.source_path, r.error))
        if r.status is not Status.OK:
            continue
        if r.plan.verdict:
            verdicts[r.plan.verdict] += 1
        faces += r.plan.faces_to_brighten or 0
        for o in r.operations:
            if o.kind is OperationKind.REJECT:
                reasons[o.params["check"]] += 1
            elif o.applied_by is AppliedBy.RETOUCHER and o.kind is not OperationKind.FLAG:
                by_hand.append((r.source_path, str(o.kind), o.reason))
    counts = [
        ("images", originals), ("accepted", verdicts.get(Verdict.ACCEPT, 0)),
        ("flagged", verdicts.get(Verdict.FLAG, 0)), ("rejected", verdicts.get(Verdict.REJECT, 0)),
        ("failed", len(failed)), ("faces to brighten", faces), ("retoucher tasks", len(by_hand)),
        ("duplicates", len(summary.get("duplicates", []))), ("exports", summary.get("exports", 0)),
    ]
    yield "<!doctype html><html lang=en><meta charset=utf-8>"
    yield f"<title>postprod report: {_e(summary.get('shoot', ''))}</title><style>{_CSS}</style>"
    yield (f"<h1>Shoot report</h1><div class=muted>{_e(summary.get('shoot', ''))} &middot; chart "
           f"<b>{_e(chart_name or '-')}</b> &middot; {summary.get('seconds', 0):.1f} s</div>")
    yield '<div class="counts">' + "".join(f'<div class="count"><b>{n}</b>{_e(k)}</div>' for k, n in counts) + "</div>"
    if reasons:
        yield ("<h2>Rejected, and why</h2><table><tr><th>check</th><th>images</th></tr>"
                   + "".join(f"<tr><td>{_e(k)}</td><td>{n}</td></tr>" for k, n in reasons.most_common()) + "</table>")
    if by_hand:
        yield ("<h2>For the retoucher</h2><table><tr><th>image</th><th>task</th><th>why</th></tr>")
        for path, kind, reason in by_hand:
            yield (f"<tr><td class=path>{_e(path)}</td><td>{_e(kind)}</td><td>{_e(reason)}</td></tr>")
        yield ("</table>")
    if failed:
        yield ("<h2>Failed files</h2><table><tr><th>file</th><th>reason</th></tr>"
                   + "".join(f"<tr><td class=path>{_e(path)}</td><td>{_e(error)}</td></tr>" for path, error in failed)
                   + "</table>")
    yield ('<h2>Images</h2><div class="legend muted"><span style="color:#e53935">&#9632; face to brighten</span>'
               '<span style="color:#43a047">&#9632; face</span><span style="color:#9e9e9e">&#9632; face too small'
               '</span><span style="color:#1e88e5">&#9633; crop frames (dashed)</span></div><div class="grid">')
    for r in records:
        if r.duplicate_of is not None or r.status is not Status.OK:
            continue
        verdict = str(r.plan.verdict or "accept")
        ops = "".join(
            f'<li class="{"hand" if o.applied_by is AppliedBy.RETOUCHER else ""}">{_e(o.reason)}</li>'
            for o in r.operations if o.kind is not OperationKind.CROP
        )
        yield (
            f'<div class="card">{_overlay(r)}<div><span class="badge {verdict}">{verdict}</span> '
            f'<span class=path><a href="instructions/{_e(instruction_name(r.source_path))}">{_e(r.source_path)}</a>'
            f'</span></div><div class=muted>{_e(summary_line(r.operations, r.plan.faces_to_brighten))}</div><ul class="ops">{ops}</ul></div>'
        )
    yield "</div></html>\n"

