"""Stage shell around :mod:`pipeline.imaging.faces`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.face_detectors import BACKENDS, Detection, FaceDetector, detect_with_unsure, get_face_detector
from models.registry import ModelError, ensure_model
from pipeline.imaging.color import Proxy
from pipeline.imaging.faces import measure_faces
from pipeline.imaging.measure import is_rendered
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.records import WorkItem
from pipeline.kernel.stage import Resources, Stage


class DetectFaces(Stage):
    """Detect faces on the proxy; measure each face's exposure and sharpness."""

    name: ClassVar[str] = "detect_faces"
    description: ClassVar[str] = "Face boxes and landmarks (YuNet or SCRFD) with per-face exposure EV and sharpness"
    reads = frozenset({"frame.width", "frame.height", "source_kind"})
    writes = frozenset({"face_count", "unsure_faces", "faces"})
    consumes = frozenset({"proxy"})
    # With --device cuda, four workers share a GPU: the detector needs little of one.
    resources = Resources(cpus=1, gpus=0.25, memory_mb=800)
    # 2: each face's skin under its eyes (Face.skin_ev).
    version: ClassVar[int] = 4  # 3: unsure_faces; 4: each face's red_eyes

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        backend: Literal["yunet", "scrfd"] = Field(
            "yunet",
            description="yunet (MIT weights, the default) or scrfd (InsightFace weights: non-commercial "
            "research only unless you hold a licence).",
        )
        score_threshold: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Drop faces scoring below this; None for the backend's default (yunet 0.7, scrfd 0.5).",
        )
        nms_threshold: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Overlap (IoU) above which the weaker of two boxes is dropped; None for the backend's default.",
        )
        verify_below_score: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Faces scoring under this must be found again at 70 % of their size (and, 64 px "
            "and wider, at half size) to be kept: drops textures the detector takes for a face at one "
            "scale. 0 keeps every detection; None for the backend's default (yunet 0.85, scrfd 0: "
            "not measured on SCRFD's scores).",
        )
        unsure_score: float | None = Field(
            0.5,
            ge=0,
            le=1,
            description="Detections scoring this or more that are not kept as faces (under score_threshold, or not "
            "found again at a second scale), and overlap none, are recorded as the record's unsure_faces: a chart "
            "that blurs faces for privacy blurs them too (a face turned away, behind goggles, far off), where a "
            "missed face is worse than a blurred patch. None records none. The faces kept are the same either way.",
        )
        shadow_pass: bool = Field(
            True,
            description="Look again for faces in shadow on a copy of the image pushed +1.25 EV when part of "
            "it is dark enough to hide a face (about one more detector run on most photos): finds small "
            "faces under a 1-1.5 EV shadow that the first look misses. False saves that time.",
        )
        runtime: Literal["auto", "opencv", "onnxruntime"] = Field(
            "auto",
            description="yunet only: onnxruntime (CPU or CUDA; what auto picks when the onnx package is "
            "installed) or opencv (cv2.FaceDetectorYN, CPU only, the reference). scrfd always uses onnxruntime.",
        )
        detector_long_edge: int = Field(
            1280,
            ge=160,
            le=8192,
            description="Long edge of the image the detector sees; larger proxies are downscaled, "
            "smaller ones are not upscaled.",
        )
        min_face_px: float = Field(
            40,
            ge=0,
            le=10000,
            description="Faces with a box side under this many full-resolution pixels are flagged too_small.",
        )
        min_face_fraction: float = Field(
            0.02,
            ge=0,
            le=1,
            description="Faces with a box side under this fraction of the image's short edge are flagged too_small.",
        )
        face_centre_fraction: float = Field(
            0.5, gt=0, le=1, description="Part of the face box's width and height measured for exposure."
        )

    detector: FaceDetector | None = None

    def preflight(self) -> None:
        # Fetch and verify the weights once, in the driver, before any image.
        try:
            ensure_model(BACKENDS[self.params.backend].model_name)
        except ModelError as exc:
            raise ConfigError(str(exc), Location(None, key=f"detect_faces.backend={self.params.backend}")) from None

    def setup(self) -> None:
        p = self.params
        self.detector = get_face_detector(
            p.backend,
            device=self.context.device,
            score_threshold=p.score_threshold,
            nms_threshold=p.nms_threshold,
            threads=self.context.threads_per_worker,
            **({"runtime": p.runtime} if p.backend == "yunet" else {}),
        )

    def process(self, item: WorkItem) -> None:
        if self.detector is None:
            self.setup()
        p = self.params
        proxy: Proxy = item.artifacts["proxy"]
        r = item.record
        ph, pw = proxy.rgb.shape[:2]
        size = (r.frame.width or round(pw * proxy.scale), r.frame.height or round(ph * proxy.scale))
        assert self.detector is not None
        detections, unsure = detect_with_unsure(
            self.detector, proxy.srgb8, proxy.scale, p.detector_long_edge, p.verify_below_score, p.shadow_pass,
            p.unsure_score,
        )
        r.unsure_faces = unsure_text(unsure)
        # Faces are metered in scene light like the whole image, so plans can compare them.
        r.faces = measure_faces(
            proxy, detections, size, is_rendered(r.source_kind), p.min_face_px, p.min_face_fraction,
            p.face_centre_fraction,
        )
        r.face_count = len(r.faces)


def unsure_text(detections: list[Detection]) -> str | None:
    """The ``unsure_faces`` column: ``x,y,w,h,score`` of each detection, ``;`` between them; None for none."""
    return ";".join(",".join(f"{v:.1f}" for v in d.box) + f",{d.score:.2f}" for d in detections) or None
