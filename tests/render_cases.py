"""Run the real decode -> render (-> export) stages on one file, for the render and export tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from charts.loader import ResolvedChart
from pipeline.kernel.ingest import sniff_format
from pipeline.kernel.records import AppliedBy, Operation, OperationKind, SourceTask, WorkItem
from pipeline.kernel.stage import RunContext
from stages.decode_raw import DecodeRaw
from stages.export import Export
from stages.render import Render


def task_for(path: Path, seq: int = 1) -> SourceTask:
    data = path.read_bytes()
    fmt, kind = sniff_format(data[:65536], path.suffix)
    return SourceTask(
        path=path,
        source_path=path.name,
        content_hash=hashlib.sha256(data).hexdigest(),
        file_size=len(data),
        format=fmt,
        source_kind=kind,
        seq=seq,
        stem=path.stem,
    )


def operations_from_json(items: list[dict[str, Any]]) -> list[Operation]:
    return [
        Operation(
            op_id=o["op_id"],
            kind=OperationKind(o["kind"]),
            params=o["params"],
            reason=o.get("reason", ""),
            applied_by=AppliedBy(o.get("applied_by", "renderer")),
        )
        for o in items
    ]


def run_stages(
    path: Path,
    chart: ResolvedChart,
    operations: list[Operation],
    out_dir: Path,
    export: bool = False,
    reuse_proxy: bool = False,
) -> WorkItem:
    """decode_raw, render and (optionally) export on one file; returns the work item."""
    context = RunContext(shoot_dir=path.parent, out_dir=out_dir, chart=chart, shoot_id="shoot-1")
    task = task_for(path)
    item = WorkItem(task=task, record=task.new_record())
    DecodeRaw(DecodeRaw.Params(), context).process(item)
    item.record.operations = operations
    Render(Render.Params(reuse_proxy=reuse_proxy), context).process(item)
    if export:
        Export(Export.Params(), context).process(item)
    return item


def turned_copy(src: Path, angle_deg: float, dest: Path) -> Path:
    """``src`` turned ``angle_deg`` counter-clockwise on screen about its centre, as a lossless PNG."""
    bgr = cv2.imread(str(src), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle_deg, 1.0)
    turned = cv2.warpAffine(bgr, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(dest), turned)
    return dest


def load_case(case_dir: Path) -> dict[str, Any]:
    return json.loads((case_dir / "operations.json").read_text(encoding="utf-8"))


def delta_e(a_srgb8: np.ndarray, b_srgb8: np.ndarray) -> np.ndarray:
    """CIEDE2000 between two 8-bit sRGB images of the same size."""
    if a_srgb8.shape != b_srgb8.shape:
        raise AssertionError(f"sizes differ: {a_srgb8.shape} vs {b_srgb8.shape}")
    return deltaE_ciede2000(rgb2lab(a_srgb8), rgb2lab(b_srgb8))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None:
        raise AssertionError(f"cannot read {path}")
    return np.ascontiguousarray(bgr[..., ::-1])
