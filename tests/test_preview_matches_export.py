"""The review's "after" preview is the delivered picture (issue 10, item 2).

For one real photo and one real RAW, the same operations (exposure, white
balance and two overlapping face lifts) go through the instruction file's JSON
into the review's preview functions, and through the real decode, render and
export stages into a delivered file. Resized to the smaller of the two, they
must be the same picture by CIEDE2000, overall and on the faces: a preview
that combined overlapping lifts by multiplying them, or feathered them
differently (the review's former copy of the renderer), is 2 to 5 dE off on
the faces while the whole image still averages under 1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from render_cases import read_rgb, run_stages
from skimage.color import deltaE_ciede2000, rgb2lab

from charts.loader import load_chart
from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
from pipeline.imaging.measure.metering import is_rendered
from pipeline.kernel.records import Operation, OperationKind
from pipeline.outputs.instructions import operation_doc
from pipeline.review.preview import after_preview, decode_preview, develops, tonal_operations

Box = tuple[float, float, float, float]

# The delivered file of an uncropped sRGB rendition, lossless and unsharpened: the
# picture the renderer made, not what a lossy encoder or the output sharpening add.
CHART = """schema_version: 2
extends: base
renditions:
  web: {long_edge_px: 2048, format: png, color_space: srgb, sharpen_amount: 0}
"""


def overlapping_pair(boxes: list[Box]) -> tuple[Box, Box]:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]:
                return a, b
    raise AssertionError("no two face boxes overlap")


def drawn_faces(faces_dir: Path, name: str) -> list[Box]:
    """The human-drawn face boxes of one PASCAL VOC photo (boxes.xml)."""
    root = ET.parse(faces_dir / "boxes.xml").getroot()
    image = next(im for im in root.iter("image") if im.get("file") == name)
    return [tuple(float(b.get(k)) for k in ("left", "top", "width", "height")) for b in image.iter("box")]


def operations(ev: float, gains: list[float], faces: list[tuple[Box, float]]) -> list[Operation]:
    ops = [
        Operation("exposure", OperationKind.EXPOSURE, {"ev": ev}, "test"),
        Operation("white_balance", OperationKind.WHITE_BALANCE, {"gains": gains}, "test"),
    ]
    for i, (box, lift) in enumerate(faces):
        params = {"face_index": i, "box": list(box), "ev": lift, "feather_px": round(0.25 * max(box[2:]), 1)}
        ops.append(Operation(f"brighten_face-{i}", OperationKind.BRIGHTEN_FACE, params, "test"))
    return ops


def lab_at(srgb8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """CIELAB of an 8-bit sRGB picture area-resized (in linear light) to ``size``."""
    linear = srgb_to_linear(srgb8.astype(np.float32) / 255)
    if (linear.shape[1], linear.shape[0]) != size:
        linear = cv2.resize(linear, size, interpolation=cv2.INTER_AREA)
    return rgb2lab(linear_to_srgb(linear))


def box_mask(shape: tuple[int, int], box: Box, scale: float) -> np.ndarray:
    x, y, w, h = (v * scale for v in box)
    mask = np.zeros(shape, dtype=bool)
    mask[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))] = True
    return mask


def preview_and_export(
    path: Path, ops: list[Operation], tmp_path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """The review's "after" picture, the delivered file's pixels, the linear preview and the full size."""
    (tmp_path / "chart.yaml").write_text(CHART)
    item = run_stages(path, load_chart(tmp_path / "chart.yaml"), ops, tmp_path / "out", export=True)
    (exported,) = item.record.exports
    delivered = read_rgb(tmp_path / "out" / exported.path)
    # The review reads the operations back from the instruction file's JSON.
    doc = {"operations": json.loads(json.dumps([operation_doc(o) for o in ops]))}
    r = item.record
    linear = decode_preview(path, r.source_kind)
    after = after_preview(linear, tonal_operations(doc), r.frame.width, r.frame.height, is_rendered(r.source_kind),
                          develops(r.source_kind))
    return after, delivered, linear, (r.frame.width, r.frame.height)


def faces_case(faces_dir: Path) -> tuple[Path, list[Operation]]:
    a, b = overlapping_pair(drawn_faces(faces_dir, "2008_002079.jpg"))
    return faces_dir / "2008_002079.jpg", operations(0.4, [1.08, 1.0, 0.9], [(a, 0.9), (b, 0.6)])


def raw_case(raw_dir: Path) -> tuple[Path, list[Operation]]:
    # 2312 px: previewed at 1600 px, delivered at 2048 px (a full demosaic, then the warp).
    faces = [((900.0, 600.0, 300.0, 360.0), 0.8), ((1100.0, 700.0, 280.0, 340.0), 0.6)]
    return raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", operations(0.5, [0.95, 1.0, 1.1], faces)


@pytest.mark.parametrize("case", ["group_photo", "crw"])
def test_after_preview_is_the_delivered_picture(
    case: str, faces_dir: Path, raw_dir: Path, tmp_path: Path
) -> None:
    path, ops = faces_case(faces_dir) if case == "group_photo" else raw_case(raw_dir)
    preview, delivered, linear, (width, height) = preview_and_export(path, ops, tmp_path)
    small = min((preview.shape[1], preview.shape[0]), (delivered.shape[1], delivered.shape[0]))
    de = deltaE_ciede2000(lab_at(preview, small), lab_at(delivered, small))
    scale = small[0] / width
    boxes = [tuple(o.params["box"]) for o in ops if o.kind is OperationKind.BRIGHTEN_FACE]
    masks = [box_mask(de.shape, box, scale) for box in boxes]
    faces, overlap = masks[0] | masks[1], masks[0] & masks[1]
    assert overlap.sum() > 50  # the two lifts do overlap at the compared size
    assert float(de.mean()) <= 1.0, float(de.mean())
    assert float(de[faces].mean()) <= 1.0, float(de[faces].mean())
    assert float(de[overlap].mean()) <= 1.0, float(de[overlap].mean())
    # The lifts are visible at this size: the picture without them is far off where they overlap.
    others = [operation_doc(o) for o in ops if o.kind is not OperationKind.BRIGHTEN_FACE]
    off = deltaE_ciede2000(lab_at(after_preview(linear, others, width, height), small), lab_at(delivered, small))
    assert float(off[overlap].mean()) > 5.0, float(off[overlap].mean())
