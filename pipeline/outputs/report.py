"""``report.html``: the shoot at a glance, for people, readable offline.

One self-contained page (inline CSS, no scripts, no network) beside the
outputs it links to: counts, what was rejected and why, what a retoucher must
do, the camera bodies' and photographers' findings
(:mod:`pipeline.outputs.equipment_report`), and a thumbnail per image with
its face boxes and crop frames drawn over it as SVG.
"""

from __future__ import annotations

import hashlib
import html
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.imaging.color import linear_to_srgb
from pipeline.imaging.geometry import rotated_corners, turned_aspect
from pipeline.imaging.measure.exposure import falloff_level
from pipeline.kernel.records import AppliedBy, OperationKind, Status, Verdict, awaiting_decision, renderer_applies
from pipeline.outputs.equipment_report import EquipmentView, equipment_section
from pipeline.outputs.instructions import instruction_name

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
.legend span{margin-right:14px} .stale{background:#6d4c41} .stale-head{color:#6d4c41} .path{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.scene{display:inline-block;border:1px solid #90a4ae;border-radius:9px;padding:0 7px;font-size:12px;color:#37474f}
.culling{color:#b8860b;font-size:13px;margin-right:4px}
.tasks td.path{word-break:normal;white-space:nowrap}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


@dataclass(frozen=True)
class ReportImage:
    """One file of the shoot as the report shows it, read from the outputs.

    Attributes
    ----------
    source_path, status, error, duplicate_of
        As in the manifest.
    doc : dict or None
        The image's instructions document (None when it failed).
    picture : str or None
        Thumbnail, relative to the output folder: the corrected picture the
        render made when there is one, else the run's uncorrected preview.
    stale : bool
        A review decision changed the image since its exports were rendered.
    """

    source_path: str
    status: str
    error: str | None = None
    duplicate_of: str | None = None
    doc: dict[str, Any] | None = None
    picture: str | None = None
    stale: bool = False


#: Crop frames, one colour per crop of an image, in the order the plan lists them.
CROP_COLOURS = ("#1e88e5", "#fdd835", "#8e24aa", "#00acc1")


def crop_label(params: dict) -> str:
    """A crop operation's aspect as a person reads it: ``"3:2"``, or ``"3:2 as 2:3"`` where it was turned to the
    picture's orientation (``aspect_turned``)."""
    aspect = str(params["aspect"])
    return f"{aspect} as {turned_aspect(aspect)}" if params.get("aspect_turned") else aspect


def _overlay(im: ReportImage) -> str:
    """SVG of the picture with face boxes (red: to brighten; a dashed ellipse: a face a reviewer marked to brighten),
    the faces blurred for privacy (dashed cyan) and the red eyes taken out (red rings), crop frames (turned), each
    crop in its colour, and a ColorChecker to remove (orange)."""
    doc = im.doc or {}
    w, h = float(doc["image"]["width"] or 1), float(doc["image"]["height"] or 1)
    active = [o for o in doc["operations"] if (o.get("review") or {}).get("status") != "rejected"]
    # A packshot's crop padded beyond the frame is drawn whole, its pad in the colour it is delivered with.
    padded = [o for o in active if o["kind"] == OperationKind.CROP and o["params"].get("pad_rgb")
              and not o["params"].get("angle_deg")]
    x0, y0, x1, y1 = 0.0, 0.0, w, h
    for op in padded:
        bx, by, bw, bh = op["params"]["box"]
        x0, y0, x1, y1 = min(x0, bx), min(y0, by), max(x1, bx + bw), max(y1, by + bh)
    parts = [f'<svg viewBox="{x0:.0f} {y0:.0f} {x1 - x0:.0f} {y1 - y0:.0f}" xmlns="http://www.w3.org/2000/svg" '
             f'role="img" aria-label="{_e(im.source_path)}">']
    whitened = any(o["kind"] == OperationKind.WHITEN_BACKDROP for o in active)
    image_id = hashlib.sha1(im.source_path.encode()).hexdigest()[:10]  # gradient ids unique in the whole report
    for n, op in enumerate(padded):
        for k, band in enumerate(_pad_bands(op["params"]["box"], w, h)):
            fill, defs = _pad_paint(op["params"], band, w, h, whitened, f"pad-{image_id}-{n}-{k}")
            bx, by, bx1, by1 = band
            parts.append(f'{defs}<rect x="{bx:.0f}" y="{by:.0f}" width="{bx1 - bx:.0f}" height="{by1 - by:.0f}" '
                         f'fill="{fill}"/>')
    if im.picture:
        parts.append(f'<image href="{_e(im.picture)}" x="0" y="0" width="{w:.0f}" height="{h:.0f}"/>')
    stroke = max(2.0, w / 300)
    brighten = {o["params"]["face_index"]: o for o in active
                if o["kind"] == OperationKind.BRIGHTEN_FACE and "face_index" in o["params"]}
    for f in doc["faces"]:
        x, y, fw, fh = f["box"]
        op = brighten.get(f["face_index"])
        color = "#e53935" if op else ("#9e9e9e" if f["too_small"] else "#43a047")
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{fw:.0f}" height="{fh:.0f}" fill="none" '
                     f'stroke="{color}" stroke-width="{stroke:.1f}"/>')
        if op:
            parts.append(f'<text x="{x:.0f}" y="{max(y - stroke * 2, stroke * 6):.0f}" fill="{color}" '
                         f'font-size="{stroke * 7:.0f}" font-weight="bold">{op["params"]["ev"]:+.1f} EV</text>')
    for o in active:  # what a reviewer marked, the faces blurred for privacy and the red eyes taken out
        p = o["params"]
        if o["kind"] == OperationKind.BRIGHTEN_FACE and p.get("drawn"):
            x, y, fw, fh = p["box"]
            parts.append(f'<ellipse cx="{x + fw / 2:.0f}" cy="{y + fh / 2:.0f}" rx="{fw / 2:.0f}" ry="{fh / 2:.0f}" '
                         f'fill="none" stroke="#e53935" stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 3:.0f}"/>')
        elif o["kind"] == OperationKind.BLUR_FACE:
            x, y, fw, fh = p["box"]
            parts.append(f'<ellipse cx="{x + fw / 2:.0f}" cy="{y + fh / 2:.0f}" rx="{fw / 2:.0f}" ry="{fh / 2:.0f}" '
                         f'fill="none" stroke="#00acc1" stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 2:.0f}"/>')
        elif o["kind"] == OperationKind.RED_EYE:
            parts += [f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{max(r, stroke * 2):.0f}" fill="none" stroke="#ff5252" '
                      f'stroke-width="{stroke * 0.6:.1f}"/>' for cx, cy, r in p["eyes"]]
    crops = [o for o in active if o["kind"] == OperationKind.CROP]
    # A keystone undone: the crops lie in the corrected frame, drawn where their pixels come from in the picture (a
    # proposed one's only once accepted: until then the crops lie in the picture as shot).
    to_source = next((o["params"]["keystone"].get("to_source") for o in active
                      if o["kind"] == OperationKind.STRAIGHTEN and o["params"].get("keystone")
                      and renderer_applies(o["applied_by"], o["params"], o.get("review"))), None)
    for k, op in enumerate(crops):
        x, y, bw, bh = op["params"]["box"]
        label = _e(crop_label(op["params"]))
        cx, cy = x + bw / 2, y + bh / 2
        angle = -float(op["params"].get("angle_deg") or 0.0)  # SVG turns clockwise for positive angles
        colour = CROP_COLOURS[k % len(CROP_COLOURS)]
        if to_source is not None:
            corners = np.array(rotated_corners((x, y, bw, bh), -angle)).T
            mapped = np.asarray(to_source, np.float64).reshape(3, 3) @ np.vstack([corners, np.ones(4)])
            px, py = mapped[:2] / mapped[2]
            points = " ".join(f"{a:.0f},{b:.0f}" for a, b in zip(px, py))
            parts.append(f'<polygon points="{points}" fill="none" stroke="{colour}" stroke-width="{stroke:.1f}" '
                         f'stroke-dasharray="{stroke * 4:.0f}"><title>{label}</title></polygon>')
            parts.append(f'<text x="{px[0] + stroke * 3:.0f}" y="{py[0] + stroke * 9:.0f}" fill="{colour}" '
                         f'font-size="{stroke * 7:.0f}" font-weight="bold">{label}</text>')
            continue
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{bw:.0f}" height="{bh:.0f}" fill="none" '
                     f'stroke="{colour}" stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 4:.0f}" '
                     f'transform="rotate({angle:.2f} {cx:.0f} {cy:.0f})"><title>{label}</title></rect>')
        parts.append(f'<text x="{x + stroke * 3:.0f}" y="{y + stroke * 9:.0f}" fill="{colour}" font-size="{stroke * 7:.0f}" '
                     f'font-weight="bold" transform="rotate({angle:.2f} {cx:.0f} {cy:.0f})">{label}</text>')
    for op in active:  # a ColorChecker to remove (acceptance.colour_checker), where the measure found it
        if op["params"].get("check") == "colour_checker" and op["params"].get("region"):
            x0, y0, x1, y1 = op["params"]["region"]
            parts.append(f'<rect x="{x0 * w:.0f}" y="{y0 * h:.0f}" width="{(x1 - x0) * w:.0f}" '
                         f'height="{(y1 - y0) * h:.0f}" fill="none" stroke="#fb8c00" stroke-width="{stroke:.1f}">'
                         f'<title>ColorChecker</title></rect>')
            parts.append(f'<text x="{x0 * w + stroke * 3:.0f}" y="{y1 * h - stroke * 3:.0f}" fill="#fb8c00" '
                         f'font-size="{stroke * 7:.0f}" font-weight="bold">ColorChecker</text>')
    parts.append("</svg>")
    return "".join(parts)


#: Stops of the gradient a pad is drawn with where the backdrop's light falls off (``pad_falloff``): the level along
#: the frame's edge is a quadratic of log2, which nine stops follow within a level or two of 255.
PAD_STOPS = 9


def _srgb_fill(linear: np.ndarray) -> str:
    """An SVG colour of a linear RGB colour, encoded for sRGB."""
    encoded = np.round(255 * linear_to_srgb(np.clip(np.asarray(linear, np.float32), 0, 1))).astype(int)
    return "rgb({},{},{})".format(*encoded)


def _pad_paint(params: dict[str, Any], band: tuple[float, float, float, float], width: float, height: float,
               whitened: bool, gradient_id: str) -> tuple[str, str]:
    """The fill of one band of a padded crop (:func:`_pad_bands`) as the after picture shows it, and the SVG
    ``<defs>`` it needs: white where the plan whitens the backdrop; else the backdrop's colour (``pad_rgb``, linear,
    encoded for sRGB), where its light falls off (``pad_falloff``) at its level along the frame's edge the band
    carries on from, as the renderer pads it (a gradient along that edge, held at its ends beyond the corners)."""
    if whitened:
        return "#fff", ""
    rgb = np.asarray(params["pad_rgb"], np.float32)
    falloff = params.get("pad_falloff")
    if not falloff:
        return _srgb_fill(rgb), ""
    _, by, _, by1 = band
    t = np.linspace(0.0, 1.0, PAD_STOPS, dtype=np.float32)
    if by1 <= 0.0 or by >= height:  # above or below the frame: the top or bottom edge's level, across
        edge = np.full_like(t, 0.0 if by1 <= 0.0 else 1.0)
        levels, ends = falloff_level(falloff, t, edge), (0.0, 0.0, width, 0.0)
    else:  # beside it: the left or right edge's level, down
        edge = np.full_like(t, 0.0 if band[2] <= 0.0 else 1.0)
        levels, ends = falloff_level(falloff, edge, t), (0.0, 0.0, 0.0, height)
    stops = "".join(f'<stop offset="{o:.3f}" stop-color="{_srgb_fill(rgb * v)}"/>' for o, v in zip(t, levels))
    x1, y1, x2, y2 = ends
    return (f"url(#{gradient_id})",
            f'<defs><linearGradient id="{gradient_id}" gradientUnits="userSpaceOnUse" x1="{x1:.0f}" y1="{y1:.0f}" '
            f'x2="{x2:.0f}" y2="{y2:.0f}">{stops}</linearGradient></defs>')


def _pad_bands(box: list[float], width: float, height: float) -> list[tuple[float, float, float, float]]:
    """What a crop ``box`` (x, y, w, h) adds beyond a ``width`` x ``height`` picture: the bands above and below
    it, then beside it, as (x0, y0, x1, y1)."""
    x, y, bw, bh = box
    x1, y1 = x + bw, y + bh
    bands = [(x, y, x1, min(y1, 0.0)), (x, max(y, height), x1, y1),
             (x, max(y, 0.0), min(x1, 0.0), min(y1, height)), (max(x, width), max(y, 0.0), x1, min(y1, height))]
    return [b for b in bands if b[2] > b[0] and b[3] > b[1]]


@dataclass
class _Scene:
    """One scene's running totals for the report's scenes table (a few numbers, not its documents)."""

    frames: int = 0
    first: str | None = None  # earliest and latest capture time (ISO text) of its frames
    last: str | None = None
    matched: Counter = field(default_factory=Counter)
    ev_min: float | None = None
    ev_max: float | None = None


def _scenes_table(scenes: dict[int, _Scene]) -> str:
    """The scenes of the shoot: frames, when, and what was matched across them.

    Scenes of two frames or more are rows; scenes of one frame are counted in a line under them: a shoot of
    unrelated photos (150 camera test files) made 150 rows of "each frame on its own" that hid the few scenes.
    """
    if not scenes:
        return ""
    rows = []
    alone = 0
    for sid in sorted(scenes):
        sc = scenes[sid]
        if sc.frames < 2:
            alone += 1
            continue
        clock = [t[11:19] for t in (sc.first, sc.last) if t]
        when = (clock[0] + (f" &ndash; {clock[-1]}" if clock[-1] != clock[0] else "")) if clock else "-"
        what = ", ".join(f"{k} on {n}" for k, n in sorted(sc.matched.items())) or "each frame on its own"
        span = ("none" if sc.ev_min is None else f"{sc.ev_min:+.2f} EV" if sc.ev_min == sc.ev_max
                else f"{sc.ev_min:+.2f} to {sc.ev_max:+.2f} EV")
        rows.append(f"<tr><td><span class=scene>scene {sid}</span></td><td>{sc.frames}</td><td>{when}</td>"
                    f"<td>{_e(what)}</td><td>{span}</td></tr>")
    parts = ["<h2>Scenes</h2>"]
    if rows:
        parts.append("<p class=muted>Frames of one place and light. Matched: the corrections planned with the scene "
                     "(the chart's consistency), on how many frames.</p><table><tr><th>scene</th><th>frames</th>"
                     "<th>taken</th><th>matched</th><th>exposure corrections</th></tr>" + "".join(rows) + "</table>")
    if alone:
        whose = "1 frame is a scene of its own" if alone == 1 else f"{alone} frames are scenes of their own"
        parts.append(f"<p class=muted>{whose} (no other frame of the shoot was taken in the same place and light): "
                     f"corrected on {'its' if alone == 1 else 'their'} own.</p>")
    return "".join(parts)


def _active(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in doc["operations"] if (o.get("review") or {}).get("status") != "rejected"]


def _culling_badge(review: dict[str, Any] | None) -> str:
    """The image's stars, reject and colour label as culled (by the photographer's sidecar or a reviewer)."""
    review = review or {}
    rating, label = review.get("rating"), review.get("label")
    if review.get("flag") == "reject" or rating == -1:
        text = "\u2715 rejected in culling"  # (not the chart's verdict beside it)
    else:
        text = "\u2605" * rating if isinstance(rating, int) and 0 < rating <= 5 else ""
        if review.get("flag") == "pick":
            text = " ".join(t for t in ("\u2691 picked", text) if t)
    text = " ".join(t for t in (text, label if isinstance(label, str) else "") if t)
    if not text:
        return ""
    by = review.get("by")
    return f'<span class=culling title="{_e("culled by " + by if by else "culled")}">{_e(text)}</span> '


def _turn_badge(image: dict[str, Any] | None) -> str:
    """A frame developed in the turn the photographer's XMP states, not the one the file stores, says so."""
    image = image or {}
    if not image.get("turned_by_xmp"):
        return ""
    return (f'<span class=culling title="tiff:Orientation {_e(str(image.get("orientation")))} in its XMP">'
            "\u21bb turned in culling</span> ")


def _card(im: ReportImage) -> str:
    """One image's card: the picture with its overlay, verdict, link to its instructions, what is done to it."""
    doc = im.doc or {}
    verdict = str(doc["verdict"] or "accept")
    ops = "".join(
        f'<li class="{"hand" if o["applied_by"] == AppliedBy.RETOUCHER else ""}">{_e(o["reason"])}'
        + (f' <i>({_e(o["review"]["status"])}{" by " + _e(o["review"]["by"]) if o["review"].get("by") else ""})</i>'
           if (o.get("review") or {}).get("status", "pending") != "pending" else "")
        + "</li>"
        for o in doc["operations"] if o["kind"] != OperationKind.CROP
    )
    stale_badge = ' <span class="badge stale" title="changed in review since it was rendered">stale export</span>' \
        if im.stale else ""
    return (
        f'<div class="card">{_overlay(im)}<div><span class="badge {verdict}">{verdict}</span>{stale_badge} '
        + _culling_badge(doc.get("review"))
        + _turn_badge(doc.get("image"))
        + (f'<span class=scene>scene {doc["scene_id"]}</span> ' if doc.get("scene_id") is not None else "")
        + f'<span class=path><a href="instructions/{_e(instruction_name(im.source_path))}">{_e(im.source_path)}</a>'
        f'</span></div><div class=muted>{_e(doc["summary"])}</div><ul class="ops">{ops}</ul></div>'
    )


#: From this many failed files the report counts them by reason before it lists them (a folder of someone's
#: documents, icons and stubs among the photographs: Pillow's 1,067 test images failed 373, in 40-odd reasons).
FAILED_BY_REASON_FROM = 10


def reason_kind(error: str) -> str:
    """A failed row's reason with its measures left out (sizes, byte counts, bits per photosite, shares): the rows
    that failed the same way read alike (``image is …x… px: too small to measure``)."""
    return _MEASURES.sub("…", error)


#: The numbers :func:`reason_kind` leaves out: those of a size, a count of bytes or bits, a share (not a format's
#: name, "JPEG 2000", nor a library's version).
_MEASURES = re.compile(r"\d+(?:\.\d+)?(?=\s*(?:x\d|px\b|bytes\b|bits\b|MP\b|%))|(?<=\dx)\d+")


class ReportBuilder:
    """``report.html`` made one image at a time, in memory that does not grow with the shoot.

    :meth:`add` takes each file of the shoot in the report's order and keeps
    counts, the scenes' running totals, and the HTML of its table rows and
    card in temporary files (a card is 1-2 KB: 10,000 of them, with their
    documents, grew the driver by about 100 MB when the page was one string);
    :meth:`chunks` gives the page, the same bytes :func:`render_report` returns.
    Use it as a context manager (the temporary files go at the end).
    """

    def __init__(self) -> None:
        self.originals = 0
        self.failed = 0
        self.failed_why: Counter = Counter()  # each failure's reason, its numbers left out (:func:`reason_kind`)
        self.faces = 0
        self.verdicts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.by_hand = 0
        self.tasks: Counter[str] = Counter()  # the retoucher's tasks by kind, for the line above their table
        self.to_confirm = 0  # of them, corrections proposed to a person, the renderer's once accepted
        self.stale = 0
        self.scenes: dict[int, _Scene] = {}
        # The sections that have a row per image, spooled (text, UTF-8) until the page is put together.
        self._stale_rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._hand_rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._failed_rows = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._cards = tempfile.TemporaryFile("w+", encoding="utf-8")

    def __enter__(self) -> ReportBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in (self._stale_rows, self._hand_rows, self._failed_rows, self._cards):
            f.close()

    def add(self, im: ReportImage) -> None:
        """Count one file of the shoot and spool its rows and card (duplicates count in the summary only)."""
        if im.duplicate_of is not None:
            return
        self.originals += 1
        if im.status == Status.FAILED:
            self.failed += 1
            self.failed_why[reason_kind(im.error or "")] += 1
            self._failed_rows.write(f"<tr><td class=path>{_e(im.source_path)}</td><td>{_e(im.error)}</td></tr>")
        if im.status != Status.OK or im.doc is None:
            return
        doc = im.doc
        if doc["verdict"]:
            self.verdicts[doc["verdict"]] += 1
        self.reasons.update(o["params"]["check"] for o in doc["operations"] if o["kind"] == OperationKind.REJECT)
        for o in doc["operations"]:
            if o["applied_by"] == AppliedBy.RETOUCHER and o["kind"] not in (OperationKind.FLAG, OperationKind.REJECT):
                self.by_hand += 1
                pending = awaiting_decision(o["params"], o.get("review"))
                self.to_confirm += pending
                kind = f"{o['kind']} (to confirm)" if pending else o["kind"]
                self.tasks[str(kind).replace("_", " ")] += 1
                self._hand_rows.write(f"<tr><td class=path>{_e(im.source_path)}</td><td>{_e(kind)}</td>"
                                      f"<td>{_e(o['reason'])}</td></tr>\n")
        self.faces += doc["faces_to_brighten"] or 0
        if im.stale:
            self.stale += 1
            self._stale_rows.write(f"<tr><td class=path>{_e(im.source_path)}</td></tr>")
        if doc.get("scene_id") is not None:
            self._add_scene(int(doc["scene_id"]), doc)
        self._cards.write(_card(im) + "\n")

    def _add_scene(self, sid: int, doc: dict[str, Any]) -> None:
        sc = self.scenes.setdefault(sid, _Scene())
        sc.frames += 1
        t = doc["image"].get("captured_at")
        if t:
            sc.first = t if sc.first is None or t < sc.first else sc.first
            sc.last = t if sc.last is None or t > sc.last else sc.last
        for o in _active(doc):
            if o["kind"] in (OperationKind.EXPOSURE, OperationKind.WHITE_BALANCE) and o["params"].get("scene_id") == sid:
                sc.matched[str(o["kind"]).replace("_", " ")] += 1
            if o["kind"] == OperationKind.EXPOSURE:
                ev = o["params"]["ev"]
                sc.ev_min = ev if sc.ev_min is None or ev < sc.ev_min else sc.ev_min
                sc.ev_max = ev if sc.ev_max is None or ev > sc.ev_max else sc.ev_max

    @staticmethod
    def _replay(f: Any) -> Iterator[str]:
        f.seek(0)
        while chunk := f.read(1 << 16):
            yield chunk

    def chunks(self, summary: dict[str, Any], chart_name: str | None,
               equipment: EquipmentView | None = None) -> Iterator[str]:
        """The page's text in pieces, with the equipment and photographers section when given."""
        counts = [
            ("images", self.originals), ("accepted", self.verdicts.get(Verdict.ACCEPT, 0)),
            ("flagged", self.verdicts.get(Verdict.FLAG, 0)), ("rejected", self.verdicts.get(Verdict.REJECT, 0)),
            ("failed", self.failed), ("faces to brighten", self.faces), ("retoucher tasks", self.by_hand),
            ("duplicates", len(summary.get("duplicates", []))), ("exports", summary.get("exports", 0)),
        ]
        if self.to_confirm:
            counts.append(("to confirm", self.to_confirm))
        if self.stale:
            counts.append(("stale exports", self.stale))
        yield "<!doctype html><html lang=en><meta charset=utf-8>"
        yield (f"\n<title>postprod report: {_e(summary.get('shoot', ''))}</title><style>{_CSS}</style>"
               f"\n<h1>Shoot report</h1><div class=muted>{_e(summary.get('shoot', ''))} &middot; chart "
               f"<b>{_e(chart_name or '-')}</b> &middot; {summary.get('seconds', 0):.1f} s</div>"
               '\n<div class="counts">' + "".join(f'<div class="count"><b>{n}</b>{_e(k)}</div>' for k, n in counts)
               + "</div>")
        if self.stale:
            yield (f'\n<h2 class="stale-head">Stale exports: {self.stale} image(s) changed in review since they were '
                   "rendered</h2><p class=muted>Re-render them with <code>postprod render OUT</code> (or the review "
                   "app's Re-render button).</p><table><tr><th>image</th></tr>")
            yield from self._replay(self._stale_rows)
            yield "</table>"
        if self.reasons:
            yield ("\n<h2>Rejected, and why</h2><table><tr><th>check</th><th>images</th></tr>"
                   + "".join(f"<tr><td>{_e(k)}</td><td>{n}</td></tr>" for k, n in self.reasons.most_common())
                   + "</table>")
        if self.by_hand:
            yield ("\n<h2>For the retoucher</h2><p>" + ", ".join(f"{_e(k)}: {n}" for k, n in self.tasks.most_common())
                   + '</p><table class="tasks"><tr><th>image</th><th>task</th><th>why</th></tr>\n')
            yield from self._replay(self._hand_rows)
            yield "</table>"
        if self.failed:
            if self.failed >= FAILED_BY_REASON_FROM and len(self.failed_why) < self.failed:
                yield ("\n<h2>Failed files, by reason</h2><table><tr><th>files</th><th>reason</th></tr>"
                       + "".join(f"<tr><td>{n}</td><td>{_e(why)}</td></tr>"
                                 for why, n in self.failed_why.most_common())
                       + "</table>")
            yield "\n<h2>Failed files</h2><table><tr><th>file</th><th>reason</th></tr>"
            yield from self._replay(self._failed_rows)
            yield "</table>"
            stood_in = [(f["source_path"], f["developed_instead"]) for f in summary.get("failed") or []
                        if f.get("developed_instead")]
            if stood_in:
                yield ("\n<p>Delivered from the camera's JPEG instead (the other file of a RAW+JPEG pair): "
                       + ", ".join(f"<span class=path>{_e(jpeg)}</span> for <span class=path>{_e(raw)}</span>"
                                   for raw, jpeg in stood_in) + ".</p>")
        skipped = summary.get("skipped_by_reason") or {}
        if skipped:
            yield ("\n<h2>Not processed</h2><table><tr><th>files</th><th>why</th></tr>"
                   + "".join(f"<tr><td>{n}</td><td>{_e(reason)}</td></tr>" for reason, n in sorted(skipped.items()))
                   + "</table>")
        lens = summary.get("lens_corrections") or {}
        if lens:
            rows = ([(n, f"corrected from the profile of the {name}") for name, n in
                     sorted(lens.get("corrected", {}).items())]
                    + [(n, f"not corrected: {why}") for why, n in sorted(lens.get("not_corrected", {}).items())])
            yield ("\n<h2>Lens profiles</h2><table><tr><th>frames</th><th>the chart's lens corrections</th></tr>"
                   + "".join(f"<tr><td>{n}</td><td>{_e(text)}</td></tr>" for n, text in rows) + "</table>")
        if summary.get("delivered_smaller"):
            n = summary.get("images_delivered_smaller") or 0
            yield ("\n<p>Delivered smaller than asked (the original too small to fill the box within the chart's "
                   "max_upscale; each crop's reason gives the size): "
                   + _e(", ".join(f"{k} {name}" for name, k in sorted(summary["delivered_smaller"].items())))
                   + f", in {n} image{'s' if n != 1 else ''}.</p>")
        if summary.get("keystones"):
            n = summary["keystones"]
            yield (f"\n<p>Converging verticals (keystone) undone in {n} frame{'s' if n != 1 else ''}, with the "
                   "straightening's turn (their operations say by how much at the frame's edges).</p>")
        yield "\n" + _scenes_table(self.scenes)
        yield "\n" + equipment_section(equipment)
        yield ('\n<h2>Images</h2><div class="legend muted"><span style="color:#e53935">&#9632; face to brighten</span>'
               '<span style="color:#43a047">&#9632; face</span><span style="color:#9e9e9e">&#9632; face too small'
               '</span><span style="color:#00acc1">&#9711; blurred for privacy</span>'
               '<span style="color:#ff5252">&#9675; red eye taken out</span>'
               '<span>crop frames (dashed), each in its colour with its aspect</span>'
               '<span>pictures show the corrections as rendered</span></div><div class="grid">\n')
        yield from self._replay(self._cards)
        yield "</div></html>\n"


def render_report(images: Iterable[ReportImage], summary: dict[str, Any], chart_name: str | None,
                  equipment: EquipmentView | None = None) -> str:
    """The HTML text of the shoot report (with the equipment and photographers section when given)."""
    with ReportBuilder() as builder:
        for im in images:
            builder.add(im)
        return "".join(builder.chunks(summary, chart_name, equipment))
