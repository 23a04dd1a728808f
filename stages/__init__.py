"""Stages, one per file, registered explicitly in :data:`REGISTRY`.

A test checks that every module in this package is registered here.
"""

from __future__ import annotations

from pipeline.kernel.stage import Stage
from stages.decode_raw import DecodeRaw
from stages.detect_faces import DetectFaces
from stages.export import Export
from stages.find_keypoints import FindKeypoints
from stages.inspect_equipment import InspectEquipment
from stages.measure_exposure import MeasureExposure
from stages.plan_retouch import PlanRetouch
from stages.render import Render
from stages.write_preview import WritePreview

REGISTRY: dict[str, type[Stage]] = {
    DecodeRaw.name: DecodeRaw,
    MeasureExposure.name: MeasureExposure,
    FindKeypoints.name: FindKeypoints,
    DetectFaces.name: DetectFaces,
    InspectEquipment.name: InspectEquipment,
    WritePreview.name: WritePreview,
    PlanRetouch.name: PlanRetouch,
    Render.name: Render,
    Export.name: Export,
}
