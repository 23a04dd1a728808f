"""The report's equipment and photographers section: findings with their evidence, per-person habits.

Drawn from what the output folder holds, so the review app can write the
report again without the run: ``equipment.parquet`` (the findings),
``operators.parquet`` (per photographer), the summary's camera bodies
(:func:`pipeline.equipment.analysis.body_summary`) and, per frame shown, its
preview, size, orientation and aperture (manifest columns).

Crops of dust spots are SVG views into the previews the run already wrote (a
``viewBox`` around the spot, a ring where it is), so the report stays one
file beside its previews and no image is written for it.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.equipment.analysis import EQUIPMENT_NAME, OPERATORS_NAME, share
from pipeline.equipment.findings import Body, FindingKind
from pipeline.imaging.orientation import sensor_to_viewed, swaps_axes

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


@dataclass(frozen=True)
class FramePicture:
    """What a dust crop or a focus thumbnail needs of one frame (its manifest columns).

    Attributes
    ----------
    preview_path : str or None
        The run's uncorrected preview, relative to the output folder (sensor
        positions are of the whole frame: the corrected picture may be cropped).
    width, height : int or None
        The oriented full-resolution size (the SVG's coordinates).
    orientation : int
        EXIF orientation, to place sensor positions in the viewed frame.
    f_number : float or None
        Aperture: dust shows at small apertures.
    """

    preview_path: str | None
    width: int | None
    height: int | None
    orientation: int = 1
    f_number: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FramePicture:
        """From a manifest row (``preview_path``, ``width``, ``height``, ``orientation``, ``aperture``)."""
        return cls(row.get("preview_path"), row.get("width"), row.get("height"), row.get("orientation") or 1,
                   row.get("aperture"))


#: Manifest columns :meth:`FramePicture.from_row` reads.
FRAME_COLUMNS = ("preview_path", "width", "height", "orientation", "aperture")


@dataclass(frozen=True)
class EquipmentView:
    """The section's data, as the output folder holds it.

    Attributes
    ----------
    findings : list of dict
        Rows of ``equipment.parquet``.
    operators : list of dict
        Rows of ``operators.parquet``.
    bodies : list of dict
        The summary's ``camera_bodies`` (:func:`pipeline.equipment.analysis.body_summary`).
    frames : dict
        :class:`FramePicture` by source path, for the frames findings show.
    frames_without_camera, evidence_missing : int
        Frames left out of the body checks (no camera named; no readable evidence file).
    """

    findings: list[dict[str, Any]]
    operators: list[dict[str, Any]]
    bodies: list[dict[str, Any]] = field(default_factory=list)
    frames: dict[str, FramePicture] = field(default_factory=dict)
    frames_without_camera: int = 0
    evidence_missing: int = 0


def frames_shown(findings: Iterable[Mapping[str, Any]]) -> set[str]:
    """Source paths of the frames the section draws (dust evidence, focus misses)."""
    paths: set[str] = set()
    for f in findings:
        if f["kind"] == FindingKind.DUST:
            paths.update((f["evidence"] or [])[:CROPS_PER_SPOT])
        elif f["kind"] == FindingKind.FOCUS_MISS and f["source_path"]:
            paths.add(f["source_path"])
    return paths


def _read_rows(path: Path) -> list[dict[str, Any]]:
    # ParquetFile, not read_table: the same table from one file, without importing pyarrow.dataset (0.1-0.25 s).
    with pq.ParquetFile(path) as table:
        return table.read().to_pylist()


def read_equipment_view(out: Path, summary: Mapping[str, Any],
                        frames: Callable[[set[str]], dict[str, FramePicture]]) -> EquipmentView | None:
    """The section's data from the output folder ``out``; None when it holds neither table.

    Parameters
    ----------
    out : Path
        The output folder (``equipment.parquet`` and ``operators.parquet`` are read).
    summary : dict
        The run's summary (``summary.json``): its ``camera_bodies``,
        ``frames_without_camera`` and ``equipment_evidence_missing``.
    frames : callable
        Given the source paths the findings show, their :class:`FramePicture`.

    Raises
    ------
    OSError, pyarrow.ArrowInvalid
        If a table is there but cannot be read.
    """
    tables = [out / EQUIPMENT_NAME, out / OPERATORS_NAME]
    if not any(p.is_file() for p in tables):
        return None
    findings, operators = (_read_rows(p) if p.is_file() else [] for p in tables)
    return EquipmentView(findings, operators, list(summary.get("camera_bodies") or []), frames(frames_shown(findings)),
                         int(summary.get("frames_without_camera") or 0),
                         int(summary.get("equipment_evidence_missing") or 0))


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _pct(n: int, of: int) -> str:
    return f"{share(n, of):.0%}" if of else "-"


def _body_name(f: Mapping[str, Any]) -> str:
    return Body(f["camera_serial"], f["camera_make"], f["camera_model"]).name


def _crop(path: str, frame: FramePicture, f: Mapping[str, Any], fid: str) -> str | None:
    """An SVG view of the frame's preview around the dust spot ``f`` (sensor position), ringed."""
    if not frame.preview_path or not frame.width or not frame.height or f["x"] is None or f["y"] is None:
        return None
    w, h = float(frame.width), float(frame.height)
    u, v = sensor_to_viewed(f["x"], f["y"], frame.orientation)
    sensor_width = h if swaps_axes(frame.orientation) else w
    radius = (f["radius"] or 0.003) * sensor_width
    half = max(6.0 * radius, 0.025 * max(w, h))
    cx, cy = u * w, v * h
    stroke = half / 40
    # A shadow of a few percent is invisible at the preview's size: the crop shows the local
    # contrast (the picture less a blur of it, amplified), where a dust shadow is a dark disc.
    return (
        f'<svg viewBox="{cx - half:.0f} {cy - half:.0f} {2 * half:.0f} {2 * half:.0f}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(path)}">'
        f'<filter id="{fid}" color-interpolation-filters="sRGB"><feGaussianBlur in="SourceGraphic" '
        f'stdDeviation="{3 * radius:.1f}" result="b"/><feComposite in="SourceGraphic" in2="b" operator="arithmetic" '
        f'k1="0" k2="{CONTRAST_GAIN}" k3="{-CONTRAST_GAIN}" k4="0.5"/></filter>'
        f'<image href="{_e(frame.preview_path)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}" '
        f'preserveAspectRatio="none" filter="url(#{fid})"/>'
        f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{max(2.5 * radius, 3 * stroke):.0f}" fill="none" stroke="#e53935" '
        f'stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 3:.1f}"/></svg>'
    )


def _thumb(path: str, frame: FramePicture, x: float | None, y: float | None) -> str:
    w, h = float(frame.width or 1), float(frame.height or 1)
    ring = ""
    if x is not None and y is not None:
        ring = (f'<circle cx="{x * w:.0f}" cy="{y * h:.0f}" r="{0.08 * max(w, h):.0f}" fill="none" stroke="#e53935" '
                f'stroke-width="{max(w, h) / 150:.1f}"/>')
    image = (f'<image href="{_e(frame.preview_path)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}"/>'
             if frame.preview_path else "")
    return (f'<svg viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{_e(path)}">{image}{ring}</svg>')


def equipment_section(view: EquipmentView | None) -> str:
    """HTML of the section (empty when the folder has no equipment check and no photographer rows)."""
    if view is None or not (view.findings or view.bodies or view.operators):
        return ""
    out = [f"<style>{CSS}</style><h2>Equipment and photographers</h2>"]
    out += _bodies(view) + _dust_and_focus(view) + _lenses(view)
    if view.operators:
        out += _photographers(view.operators)
    return "\n".join(out)


#: Up to this many camera bodies every one is a row; beyond, the bodies nothing was found on are counted in a
#: line under those with a finding (a batch of 150 camera test photos, one body each, made 150 rows of zeros).
LISTED_BODIES = 12


def _bodies(view: EquipmentView) -> list[str]:
    out: list[str] = []
    counts: dict[str, Counter] = defaultdict(Counter)
    for f in view.findings:
        counts[_body_name(f)][f["kind"]] += 1
    many = len(view.bodies) > LISTED_BODIES
    listed = [b for b in view.bodies if not many or counts.get(b["body"])]
    clean = [b for b in view.bodies if many and not counts.get(b["body"])]
    if listed:
        out.append("<table><tr><th>camera body</th><th>photographers</th><th>frames</th><th>dust spots</th>"
                   "<th>hot / dead / stuck photosites</th><th>focus misses</th></tr>")
        for b in listed:
            c = counts.get(b["body"], Counter())
            people = ", ".join(f"{p} ({n})" for p, n in b["photographers"])
            out.append(
                f"<tr><td>{_e(b['body'])}</td><td>{_e(people)}</td><td>{b['frames']}</td>"
                f"<td>{c[FindingKind.DUST]}</td><td>{c[FindingKind.HOT_PIXEL]} / "
                f"{c[FindingKind.DEAD_PIXEL]} / {c[FindingKind.STUCK_PIXEL]}</td>"
                f"<td>{c[FindingKind.FOCUS_MISS]} of {b['focus_judged']}</td></tr>")
        out.append("</table>")
    if clean:
        frames = sum(b["frames"] for b in clean)
        out.append(f"<p class=muted>{'Another' if listed else 'All'} {len(clean)} camera bodies ({frames} frames): "
                   "no dust spot, photosite fault or focus miss found.</p>")
    if view.frames_without_camera:
        out.append(f"<p class=muted>{view.frames_without_camera} frame(s) name no camera: left out of the body "
                   "checks.</p>")
    if view.evidence_missing:
        out.append(f"<p class=muted>{view.evidence_missing} frame(s) had no readable evidence file (removed "
                   "since the analysis?): rerun with the folder intact to include them.</p>")
    return out


def _dust_and_focus(view: EquipmentView) -> list[str]:
    out: list[str] = []
    dust = [f for f in view.findings if f["kind"] == FindingKind.DUST]
    if dust:
        out.append("<h3>Sensor dust</h3>")
        for i, f in enumerate(dust):
            out.append(f'<div class="find">{_e(f["detail"])}</div><div class="crops">')
            for j, path in enumerate((f["evidence"] or [])[:CROPS_PER_SPOT]):
                frame = view.frames.get(path)
                svg = _crop(path, frame, f, f"hp{i}-{j}") if frame is not None else None
                if svg:
                    at = f" f/{frame.f_number:g}" if frame.f_number else ""  # type: ignore[union-attr]
                    out.append(f'<div class="crop">{svg}<span class=path>{_e(path)}{_e(at)}</span></div>')
            out.append("</div>")
    sites = [f for f in view.findings if f["kind"] in (FindingKind.HOT_PIXEL, FindingKind.DEAD_PIXEL,
                                                        FindingKind.STUCK_PIXEL)]
    if sites:
        out.append("<h3>Hot, dead and stuck photosites</h3><p class=muted>The same photosite far from all its "
                   "neighbours of the same colour, frame after frame. Map it out in the camera (pixel mapping) or "
                   "have the body serviced; raw converters hide single photosites, in-camera JPEGs may not.</p>"
                   "<table><tr><th>camera body</th><th>kind</th><th>where (across, down)</th><th>reads</th>"
                   "<th>frames</th></tr>")
        for f in sites:
            out.append(f"<tr><td>{_e(_body_name(f))}</td><td>{_e(str(f['kind']).replace('_pixel', ''))}"
                       f"</td><td>{f['x']:.1%}, {f['y']:.1%}</td><td>{f['strength']:.0%} of the range</td>"
                       f"<td>{f['frames']} of {f['frames_examined']}</td></tr>")
        out.append("</table>")
    focus = [f for f in view.findings if f["kind"] == FindingKind.FOCUS_MISS]
    if focus:
        out.append(f"<h3>Focus misses ({len(focus)})</h3><div class=grid>")
        for f in focus[:FOCUS_CARDS]:
            frame = view.frames.get(f["source_path"] or "")
            if frame is None:
                continue
            out.append(f'<div class=card>{_thumb(f["source_path"], frame, f["x"], f["y"])}'
                       f'<div class=muted>{_e(f["detail"])}</div></div>')
        out.append("</div>")
        if len(focus) > FOCUS_CARDS:
            out.append("<ul>" + "".join(f"<li>{_e(f['detail'])}</li>" for f in focus[FOCUS_CARDS:]) + "</ul>")
    return out


def _lenses(view: EquipmentView) -> list[str]:
    found = [f for f in view.findings if f["kind"] in (FindingKind.DECENTRING, FindingKind.VIGNETTING)]
    if not found:
        return []
    out = ["<h3>Lenses</h3><p class=muted>From all the frames of a body with one lens: the scene differs from frame "
           "to frame, the lens does not. Soft on one side: a decentred or tilted element. Vignetting: corners "
           "darker than a sound lens leaves them at those apertures.</p><table><tr><th>camera body</th><th>kind</th>"
           "<th>frames</th><th>confidence</th><th>what the frames show</th></tr>"]
    for f in found:
        kind = "soft on one side" if f["kind"] == FindingKind.DECENTRING else "vignetting beyond the norm"
        out.append(f"<tr><td>{_e(_body_name(f))}</td><td>{kind}</td><td>{f['frames']} of {f['frames_examined']}"
                   f"</td><td>{f['confidence']:.2f}</td><td>{_e(f['detail'])}</td></tr>")
    out.append("</table>")
    return out


def _photographers(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = ["<h3>Photographers</h3><table><tr><th>photographer</th><th>frames</th><th>rejected</th>"
           "<th>to a retoucher</th><th>exposure / white balance / face / straighten corrected</th>"
           "<th>exposure EV (median, 10-90 %)</th><th>horizon / verticals (median)</th>"
           "<th>camera pitched (median lean at the edges)</th><th>bursts</th>"
           "<th>near-duplicates</th><th>focus misses</th><th>most frequent reasons</th></tr>"]
    for r in rows:
        n = r["planned"]
        ev = (f"{r['exposure_ev_median']:+.2f} ({r['exposure_ev_p10']:+.1f} to {r['exposure_ev_p90']:+.1f})"
              if r["exposure_ev_median"] is not None else "-")
        tilt = " / ".join(f"{v:+.1f}&deg;" if v is not None else "-"
                          for v in (r["horizon_tilt_median_deg"], r["verticals_tilt_median_deg"]))
        reasons = ", ".join(f"{_e(k)} ({v})" for k, v in sorted(r["reasons"] or [], key=lambda kv: -kv[1])[:4])
        pitched = r.get("pitched_frames") or 0
        lean = r.get("keystone_lean_median_deg")
        pitch = _pct(pitched, n) + (f" ({lean:+.1f}&deg; {'up' if lean > 0 else 'down'})" if pitched and lean else "")
        out.append(
            f"<tr><td>{_e(r['photographer'])}</td><td>{r['captures']}</td><td>{_pct(r['rejected'], n)}</td>"
            f"<td>{_pct(r['to_retoucher'], n)}</td><td>{_pct(r['needs_exposure'], n)} / "
            f"{_pct(r['needs_white_balance'], n)} / {_pct(r['needs_brighten_face'], n)} / "
            f"{_pct(r['needs_straighten'], n)}</td><td>{ev}</td><td>{tilt}</td><td>{pitch}</td>"
            f"<td>{r['bursts']} ({r['burst_frames']} frames)</td><td>{r['near_duplicates']}</td>"
            f"<td>{r['focus_misses']} of {r['focus_judged']}</td><td>{reasons or '-'}</td></tr>")
    out.append("</table>")
    return out
