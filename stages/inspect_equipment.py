"""Equipment evidence of one frame: who made it with which body, the sensor's dust and photosites, focus.

A shell around the imaging core: :func:`pipeline.imaging.identity.read_identity`
(body and lens serials, EXIF Artist), :func:`pipeline.imaging.dust.dust_evidence`
(from the proxy), :func:`pipeline.imaging.lens_field.lens_field` (the proxy's
brightness and detail per place of the sensor, for the lens checks), the
photosite scan decode_raw made while LibRaw held the raw data, and :func:`pipeline.imaging.focus_miss.assess_focus` (after detect_faces:
the main face is what focus is judged on). Nothing is decided about the body
here: one frame cannot tell dust from a dark spot in the scene. The dust map
and the photosite candidates go to a small file beside the journal
(:mod:`pipeline.equipment.evidence`); the end of the run adds them up per body.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from models.face_detectors import BACKENDS, FaceDetector, detect_on_proxy, get_face_detector
from models.registry import ModelError, ensure_model
from pipeline.equipment.evidence import evidence_bytes, evidence_path
from pipeline.imaging.color import Proxy
from pipeline.imaging.dust import MIN_RASTER_LONG_EDGE as DUST_MIN_RASTER_LONG_EDGE
from pipeline.imaging.dust import MIN_SIDE_PX as DUST_MIN_SIDE_PX
from pipeline.imaging.dust import dust_evidence
from pipeline.imaging.focus_miss import FACE_SECOND_LOOK_LONG_EDGE, FocusSubject, assess_focus
from pipeline.imaging.focus_miss import MIN_SIDE_PX as FOCUS_MIN_SIDE_PX
from pipeline.imaging.identity import read_identity
from pipeline.imaging.lens_field import MIN_SIDE_PX as LENS_MIN_SIDE_PX
from pipeline.imaging.lens_field import lens_field
from pipeline.imaging.sensor_defects import PhotositeScan
from pipeline.kernel.beside import beside
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.records import EquipmentCheck, ImageRecord, SourceKind, WorkItem
from pipeline.kernel.stage import Resources, Stage


class InspectEquipment(Stage):
    """Identity, dust evidence, photosite candidates and the focus verdict of one frame."""

    name: ClassVar[str] = "inspect_equipment"
    description: ClassVar[str] = (
        "Camera body and lens serials and EXIF Artist; sensor-dust evidence map and hot/dead/stuck photosite "
        "candidates and lens field (to .postprod/equipment/, added up per body at the end of the run); focus "
        "verdict of the main face (else the salient region), camera shake"
    )
    reads = frozenset({
        "frame.orientation", "frame.width", "frame.height", "faces", "content.saliency_x", "content.saliency_y",
        "camera.shutter_s", "camera.focal_length_mm",
    })  # fmt: skip
    writes = frozenset({
        "identity.camera_serial", "identity.camera_serial_tag", "identity.lens_serial", "identity.artist", "equipment",
    })  # fmt: skip
    consumes = frozenset({"proxy", "photosite_scan"})
    resources = Resources(cpus=1, memory_mb=700)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        exiftool: bool = Field(
            True,
            description="Ask exiftool (when installed) for body serials that only the maker notes hold (Canon, "
            "Nikon, Phase One); exiv2 reads the standard tags either way.",
        )
        dust: bool = Field(True, description="Write the frame's sensor-dust evidence map.")
        focus: bool = Field(True, description="Judge whether the main face (else the salient region) is in focus.")
        lens: bool = Field(True, description="Write the frame's lens field (brightness and detail per place of "
                           "the sensor), for the decentring and vignetting checks.")
        focus_second_look: bool = Field(
            True,
            description="When detect_faces found no face sure enough to judge focus on, look again with YuNet "
            "at half its size (640 px): a back-focused face's blur halves with the image and YuNet finds the "
            "face again.",
        )

    detector: FaceDetector | None = None

    def preflight(self) -> None:
        if self.params.focus and self.params.focus_second_look:
            try:
                ensure_model(BACKENDS["yunet"].model_name)
            except ModelError as exc:
                raise ConfigError(str(exc), Location(None, key="inspect_equipment.focus_second_look")) from None

    def setup(self) -> None:
        if self.params.focus and self.params.focus_second_look:
            # On the CPU whatever the run's device: this stage holds no GPU, and a 640 px look is cheap.
            self.detector = get_face_detector("yunet", device="cpu", threads=self.context.threads_per_worker)

    def process(self, item: WorkItem) -> None:
        p = self.params
        r = item.record
        threads = self.context.threads_per_worker
        # The serials (exiftool answers in its own process) and the dust evidence beside the lens field and the
        # focus (pipeline.kernel.beside): they read the file and the proxy, never the record.
        identity = beside(threads, read_identity, item.task.path, exiftool=p.exiftool)
        proxy: Proxy = item.artifacts["proxy"]
        scan: PhotositeScan | None = item.artifacts.get("photosite_scan")
        check = EquipmentCheck()
        # A frame decode_raw accepts can be smaller than either check needs (8 px a side is enough to
        # measure exposure): it gives no dust evidence and no focus verdict, not an error.
        side = min(proxy.rgb.shape[:2])
        dusted = (beside(threads, dust_evidence, proxy.rgb, r.frame.orientation)
                  if p.dust and side >= DUST_MIN_SIDE_PX and shows_the_sensor(r) else None)
        lens = lens_field(proxy.rgb, r.frame.orientation) if p.lens and side >= LENS_MIN_SIDE_PX else None
        if p.focus and side >= FOCUS_MIN_SIDE_PX:
            self._judge_focus(item, proxy, check)
        elif p.focus:
            check.focus_detail = f"not judged: the frame is under {FOCUS_MIN_SIDE_PX} px a side"
        found = identity.result()
        r.identity.camera_serial = found.body_serial
        r.identity.camera_serial_tag = found.body_serial_tag
        r.identity.lens_serial = found.lens_serial
        r.identity.artist = found.artist
        dust = None if dusted is None else dusted.result()
        if dust is not None or scan is not None or lens is not None:
            rel = evidence_path(item.task.content_hash)
            self.write_file(self.out_path(rel), evidence_bytes(dust, scan, lens))
            check.evidence_path = rel
        if dust is not None:
            check.dust_usable_pct = round(100.0 * dust.usable_fraction, 2)
        if scan is not None:
            check.photosite_scan_skipped = scan.skipped
            check.photosite_candidates = None if scan.skipped else len(scan.candidates)
        r.equipment = check

    def _judge_focus(self, item: WorkItem, proxy: Proxy, check: EquipmentCheck) -> None:
        r = item.record
        ph, pw = proxy.rgb.shape[:2]
        width, height = r.frame.width or round(pw * proxy.scale), r.frame.height or round(ph * proxy.scale)
        faces = [((f.x, f.y, f.width, f.height), f.score) for f in r.faces]
        subject = FocusSubject.main_face(faces, width, height)
        if subject is None and self.params.focus_second_look:
            assert self.detector is not None, "setup() loads the second look's detector"
            # A blurred face, not a shadowed one: no shadow pass (detect_faces' look had one).
            second = detect_on_proxy(self.detector, proxy.srgb8, proxy.scale, FACE_SECOND_LOOK_LONG_EDGE,
                                     shadow_pass=False)
            subject = FocusSubject.main_face([(d.box, d.score) for d in second], width, height)
        saliency = None
        if r.content.saliency_x is not None and r.content.saliency_y is not None:
            saliency = (r.content.saliency_x, r.content.saliency_y)
        v = assess_focus(proxy.rgb, subject, saliency=saliency, shutter_s=r.camera.shutter_s,
                         focal_length_mm=r.camera.focal_length_mm, luma=proxy.luma)
        check.focus_miss = v.missed
        check.focus_motion = v.directional
        check.focus_detail = v.detail
        check.focus_subject_blur_px = v.subject_blur_px
        check.focus_sharpest_blur_px = v.sharpest_blur_px
        if v.subject is not None:
            s = v.subject
            check.focus_subject = s.source
            check.focus_subject_x = min(max(s.x + s.width / 2, 0.0), 1.0)
            check.focus_subject_y = min(max(s.y + s.height / 2, 0.0), 1.0)


def shows_the_sensor(record: ImageRecord) -> bool:
    """Whether the frame's pixels can be laid on its sensor for dust evidence: a RAW's always; a rendered
    file's when its long edge is at least :data:`~pipeline.imaging.dust.MIN_RASTER_LONG_EDGE` (a smaller one
    is a copy made for the web, resized and often cropped)."""
    if record.source_kind is SourceKind.RAW:
        return True
    return max(record.frame.width or 0, record.frame.height or 0) >= DUST_MIN_RASTER_LONG_EDGE
