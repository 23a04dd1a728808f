"""The report's equipment and photographers section: findings with their evidence, per-person habits.

Crops of dust spots are SVG views into the previews the run already wrote (a
``viewBox`` around the spot, a ring where it is), so the report stays one
file beside its previews and no image is written for it.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pipeline.equipment.analysis import EquipmentResult, share
from pipeline.equipment.findings import EquipmentFinding, FindingKind
from pipeline.imaging.orientation import sensor_to_viewed, swaps_axes
from pipeline.kernel.records import ImageRecord

#: Frames shown per dust spot.
CROPS_PER_SPOT = 6
#: Gain of the local-contrast view of a dust crop.
CONTRAST_GAIN = 5
#: Focus misses shown with a thumbnail (the rest are listed).
FOCUS_CARDS = 24

CSS = """
.crops{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0 14px}
.crop{width:120px;font-size:11px}.crop svg{width:120px;height:120px;display:block;background:#eee}
.find{margin:10px 0 2px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _pct(n: int, of: int) -> str:
    return f"{share(n, of):.0%}" if of else "-"


def _crop(r: ImageRecord, f: EquipmentFinding, orientation: int, fid: str) -> str | None:
    """An SVG view of ``r``'s preview around the dust spot ``f`` (sensor position), ringed."""
    if not r.preview_path or not r.frame.width or not r.frame.height or f.x is None or f.y is None:
        return None
    w, h = float(r.frame.width), float(r.frame.height)
    u, v = sensor_to_viewed(f.x, f.y, orientation)
    sensor_width = h if swaps_axes(orientation) else w
    radius = (f.radius or 0.003) * sensor_width
    half = max(6.0 * radius, 0.025 * max(w, h))
    cx, cy = u * w, v * h
    stroke = half / 40
    # A shadow of a few percent is invisible at the preview's size: the crop shows the local
    # contrast (the picture less a blur of it, amplified), where a dust shadow is a dark disc.
    return (
        f'<svg viewBox="{cx - half:.0f} {cy - half:.0f} {2 * half:.0f} {2 * half:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(r.source_path)}">'
        f'<filter id="{fid}" color-interpolation-filters="sRGB"><feGaussianBlur in="SourceGraphic" '
        f'stdDeviation="{3 * radius:.1f}" result="b"/><feComposite in="SourceGraphic" in2="b" operator="arithmetic" '
        f'k1="0" k2="{CONTRAST_GAIN}" k3="{-CONTRAST_GAIN}" k4="0.5"/></filter>'
        f'<image href="{_e(r.preview_path)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}" preserveAspectRatio="none" '
        f'filter="url(#{fid})"/>'
        f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{max(2.5 * radius, 3 * stroke):.0f}" fill="none" stroke="#e53935" '
        f'stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 3:.1f}"/></svg>'
    )


def _thumb(r: ImageRecord, x: float | None, y: float | None) -> str:
    w, h = float(r.frame.width or 1), float(r.frame.height or 1)
    ring = ""
    if x is not None and y is not None:
        ring = (f'<circle cx="{x * w:.0f}" cy="{y * h:.0f}" r="{0.08 * max(w, h):.0f}" fill="none" stroke="#e53935" '
                f'stroke-width="{max(w, h) / 150:.1f}"/>')
    image = (f'<image href="{_e(r.preview_path)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}"/>'
             if r.preview_path else "")
    return (f'<svg viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{_e(r.source_path)}">{image}{ring}</svg>')


def equipment_section(records: Sequence[ImageRecord], result: EquipmentResult | None,
                      operators: Sequence[dict[str, Any]]) -> str:
    """HTML of the section (empty when the run had no equipment check and no photographer rows)."""
    if result is None and not operators:
        return ""
    by_path = {r.source_path: r for r in records}
    out = [f"<style>{CSS}</style><h2>Equipment and photographers</h2>"]
    if result is not None:
        out += _bodies(result) + _dust_and_focus(by_path, result)
    if operators:
        out += _photographers(operators)
    return "\n".join(out)


def _bodies(result: EquipmentResult) -> list[str]:
    out: list[str] = []
    counts: dict[str, dict[FindingKind, int]] = defaultdict(lambda: defaultdict(int))
    for f in result.findings:
        bf = result.body_of_finding(f)
        counts[bf.body.name if bf else "unknown camera"][f.kind] += 1
    if result.bodies:
        out.append("<table><tr><th>camera body</th><th>photographers</th><th>frames</th><th>dust spots</th>"
                   "<th>hot / dead / stuck photosites</th><th>focus misses</th></tr>")
        for key, bf in sorted(result.bodies.items()):
            c = counts.get(bf.body.name, {})
            people = ", ".join(f"{p} ({n})" for p, n in bf.photographers.most_common())
            out.append(
                f"<tr><td>{_e(bf.body.name)}</td><td>{_e(people)}</td><td>{len(bf.frames)}</td>"
                f"<td>{c.get(FindingKind.DUST, 0)}</td><td>{c.get(FindingKind.HOT_PIXEL, 0)} / "
                f"{c.get(FindingKind.DEAD_PIXEL, 0)} / {c.get(FindingKind.STUCK_PIXEL, 0)}</td>"
                f"<td>{c.get(FindingKind.FOCUS_MISS, 0)} of {bf.focus_judged}</td></tr>")
        out.append("</table>")
    if result.frames_without_body:
        out.append(f"<p class=muted>{result.frames_without_body} frame(s) name no camera: left out of the body checks.</p>")
    if result.evidence_missing:
        out.append(f"<p class=muted>{result.evidence_missing} frame(s) had no readable evidence file (removed "
                   "since the analysis?): rerun with the folder intact to include them.</p>")
    return out


def _dust_and_focus(records_by_path: dict[str, ImageRecord], result: EquipmentResult) -> list[str]:
    out: list[str] = []
    dust = [f for f in result.findings if f.kind is FindingKind.DUST]
    if dust:
        out.append("<h3>Sensor dust</h3>")
        for i, f in enumerate(dust):
            out.append(f'<div class="find">{_e(f.detail)}</div><div class="crops">')
            for j, path in enumerate(f.evidence[:CROPS_PER_SPOT]):
                r, ref = records_by_path.get(path), result.frames.get(path)
                svg = _crop(r, f, ref.orientation, f"hp{i}-{j}") if r is not None and ref is not None else None
                if svg:
                    at = f" f/{ref.f_number:g}" if ref.f_number else ""
                    out.append(f'<div class="crop">{svg}<span class=path>{_e(path)}{_e(at)}</span></div>')
            out.append("</div>")
    sites = [f for f in result.findings if f.kind in (FindingKind.HOT_PIXEL, FindingKind.DEAD_PIXEL,
                                                      FindingKind.STUCK_PIXEL)]
    if sites:
        out.append("<h3>Hot, dead and stuck photosites</h3><p class=muted>The same photosite far from all its "
                   "neighbours of the same colour, frame after frame. Map it out in the camera (pixel mapping) or "
                   "have the body serviced; raw converters hide single photosites, in-camera JPEGs may not.</p>"
                   "<table><tr><th>camera body</th><th>kind</th><th>where (across, down)</th><th>reads</th>"
                   "<th>frames</th></tr>")
        for f in sites:
            bf = result.body_of_finding(f)
            out.append(f"<tr><td>{_e(bf.body.name if bf else '-')}</td><td>{_e(str(f.kind).replace('_pixel', ''))}"
                       f"</td><td>{f.x:.1%}, {f.y:.1%}</td><td>{f.strength:.0%} of the range</td>"
                       f"<td>{f.frames} of {f.frames_examined}</td></tr>")
        out.append("</table>")
    focus = [f for f in result.findings if f.kind is FindingKind.FOCUS_MISS]
    if focus:
        out.append(f"<h3>Focus misses ({len(focus)})</h3><div class=grid>")
        for f in focus[:FOCUS_CARDS]:
            r = records_by_path.get(f.source_path or "")
            if r is None:
                continue
            out.append(f'<div class=card>{_thumb(r, f.x, f.y)}<div class=muted>{_e(f.detail)}</div></div>')
        out.append("</div>")
        if len(focus) > FOCUS_CARDS:
            out.append("<ul>" + "".join(f"<li>{_e(f.detail)}</li>" for f in focus[FOCUS_CARDS:]) + "</ul>")
    return out


def _photographers(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = ["<h3>Photographers</h3><table><tr><th>photographer</th><th>frames</th><th>rejected</th>"
           "<th>to a retoucher</th><th>exposure / white balance / face / straighten corrected</th>"
           "<th>exposure EV (median, 10-90 %)</th><th>horizon / verticals (median)</th><th>bursts</th>"
           "<th>near-duplicates</th><th>focus misses</th><th>most frequent reasons</th></tr>"]
    for r in rows:
        n = r["planned"]
        ev = (f"{r['exposure_ev_median']:+.2f} ({r['exposure_ev_p10']:+.1f} to {r['exposure_ev_p90']:+.1f})"
              if r["exposure_ev_median"] is not None else "-")
        tilt = " / ".join(f"{v:+.1f}&deg;" if v is not None else "-"
                          for v in (r["horizon_tilt_median_deg"], r["verticals_tilt_median_deg"]))
        reasons = ", ".join(f"{_e(k)} ({v})" for k, v in sorted(r["reasons"], key=lambda kv: -kv[1])[:4])
        out.append(
            f"<tr><td>{_e(r['photographer'])}</td><td>{r['captures']}</td><td>{_pct(r['rejected'], n)}</td>"
            f"<td>{_pct(r['to_retoucher'], n)}</td><td>{_pct(r['needs_exposure'], n)} / "
            f"{_pct(r['needs_white_balance'], n)} / {_pct(r['needs_brighten_face'], n)} / "
            f"{_pct(r['needs_straighten'], n)}</td><td>{ev}</td><td>{tilt}</td>"
            f"<td>{r['bursts']} ({r['burst_frames']} frames)</td><td>{r['near_duplicates']}</td>"
            f"<td>{r['focus_misses']} of {r['focus_judged']}</td><td>{reasons or '-'}</td></tr>")
    out.append("</table>")
    return out
