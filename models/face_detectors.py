"""Face detector backends behind one interface.

* :class:`YuNetDetector` (default, MIT weights): the ONNX file on onnxruntime
  (CPU or CUDA execution provider), its raw outputs decoded here exactly as
  OpenCV's ``FaceDetectorYN`` (and opencv_zoo's YuNet demo) decodes them; or
  ``cv2.FaceDetectorYN`` itself, the reference, on the CPU.
* :class:`ScrfdDetector`: InsightFace's SCRFD-500M through
  ``insightface.model_zoo.scrfd.SCRFD`` on onnxruntime. InsightFace's
  pretrained weights are licensed for non-commercial research only: use this
  backend only if you hold a licence for them.

Every backend takes an 8-bit BGR image and returns :class:`Detection` objects
in that image's pixels; :func:`detect_on_proxy` sizes the analysis proxy for
the detector and maps the results to full-resolution coordinates.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np

from models.onnx_wire import free_input_size
from models.registry import ensure_model, load_once
from pipeline.imaging.color import srgb_to_linear, to_srgb8

log = logging.getLogger(__name__)

Backend = Literal["yunet", "scrfd"]
Runtime = Literal["auto", "opencv", "onnxruntime"]

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

#: onnxruntime's CUDA provider plans each convolution for the last input shape it ran and plans it
#: again whenever the shape changes: about 1 s a change with its default (exhaustive) cuDNN search and
#: 80 ms with the heuristic one, against 8 ms of inference at 1280x960 (45 ms on one CPU thread; an
#: H200, benchmarks/gpu_check.py, 2026-12-04). A shoot mixes landscape and portrait frames, so on CUDA
#: YuNet keeps a session per input shape (the CUDA_SHAPE_SESSIONS most recently used), planned by
#: heuristic, and runs inputs under CUDA_MIN_PIXELS on the CPU: detect_on_proxy's second looks at a
#: face, a new shape nearly every call, take a few ms there.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}
CUDA_SHAPE_SESSIONS = 4
CUDA_MIN_PIXELS = 512 * 512

#: Detections scoring under this are confirmed at smaller scales (:func:`holds_at_second_scale`);
#: surer ones are kept as found. Chosen on the accuracy corpus's tuning split (and its tuning sources
#: pushed +-1 EV) and the shared portraits (benchmarks/face_verify.py): every false face seen there
#: scored 0.70-0.78 (a rowing boat in EveningGlow, a shadow in opencv's plant), and real faces score
#: down to 0.70 (Roland Tanglao's brightened twins, background people in Probably Okay).
VERIFY_BELOW_SCORE = 0.85
#: The second look, relative to the first: the face shrunk to 70 %. Real faces of the tuning material
#: still score 0.41-0.88 there, 27 px ones included; the boat and the plant's shadow score 0 (and so
#: does a jar YuNet calls a face at 0.70 in the FiveK balcony photo, a set no constant saw).
VERIFY_SCALE = 0.7
#: Faces at least this wide (detector pixels) are also looked at at half size, where they are still
#: 32 px or more (YuNet finds PASCAL VOC's 37 px faces at 0.89): the boat pushed +1 EV still scores
#: 0.32 at 70 % but 0 at 50 %, the real faces 0.39-0.88. Under it a face at half size is too small to
#: judge (27 px faces score 0 there) and a small false face can come back (the jar: 0.42-0.54).
VERIFY_HALF_MIN_PX = 64.0
VERIFY_HALF_SCALE = 0.5
#: Score the face must reach at every smaller look to be kept: under the real faces' lowest (0.385
#: at half size, 0.41 at 70 %), above the +1 EV boat's 0.32.
VERIFY_MIN_SCORE = 0.3
#: Context around the face for the second look, in face-box sizes either side of its centre.
_VERIFY_CONTEXT = 1.5

#: The shadow pass (:func:`shadowed_faces`): a second detection on a copy of the detector's input
#: pushed this many EV in linear light, for faces in a shadow that the first pass misses. A JPEG face
#: 1-1.5 EV under is dark and flat after the tone curve; pushed back up, it is a face again.
SHADOW_PUSH_EV = 1.25
#: A face's centre is in shadow when its mean 8-bit sRGB luma is under this. A soft shadow of 1-1.5 EV
#: leaves a pale face mid-grey, not black: the faces the pass found on the tuning twins read 151-166
#: (Roland Tanglao's pale colleague at 320 px, 1.2 and 1.5 EV under). Brighter than this, a face was
#: not lost to a shadow, and the push would clip it.
SHADOW_LUMA = 180
#: The pass runs only when a square this wide (detector pixels: about the smallest face YuNet finds)
#: is in shadow on average somewhere in the image.
SHADOW_MIN_FACE_PX = 16
#: Faces the pass finds must be this wide (detector pixels): the real faces it found on the tuning
#: twins were 23 px, the textures it took for faces 16-19 px (a0716's pavement and clothes at 320 px).
SHADOW_FACE_MIN_PX = 20
#: And score this much on the pushed copy: above every detection there that was no face on the tuning
#: twins (0.70-0.78: a0716's pavement at 320 px, EveningGlow's boat, a Dragonfly texture), under the
#: faces the pass found (0.82-0.84). The pushed copy's textures need the margin that the first look's
#: 0.7 threshold leaves to a photo as it is.
SHADOW_MIN_SCORE = 0.8


@dataclass(frozen=True)
class Detection:
    """One detected face.

    Attributes
    ----------
    box : tuple of float
        ``(x, y, width, height)`` of the face box, in the pixels of the image
        the detector saw (or of the full-resolution image once mapped).
    landmarks : tuple of (x, y)
        Five points, in the order both YuNet and SCRFD use (the ArcFace
        alignment order): the eye on the image's left, the eye on the image's
        right, the nose tip, the mouth corner on the image's left, the mouth
        corner on the image's right.
    score : float
        Detector confidence in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float

    def scaled(self, factor: float) -> Detection:
        """The same face in an image ``factor`` times larger."""
        x, y, w, h = self.box
        return Detection(
            box=(x * factor, y * factor, w * factor, h * factor),
            landmarks=tuple((px * factor, py * factor) for px, py in self.landmarks),
            score=self.score,
        )


def available_providers() -> list[str]:
    """onnxruntime's execution providers in this environment (CUDA needs onnxruntime-gpu)."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def cuda_available() -> bool:
    """Whether onnxruntime has its CUDA provider (onnxruntime-gpu).

    Asked of onnxruntime once it is imported; before, read off its installed files (the provider's library ships
    with it exactly when it has CUDA): a Ray run's driver, which detects no face, chooses the device
    (:func:`resolve_device`) without importing onnxruntime (35 MB of its memory).
    """
    if "onnxruntime" in sys.modules:
        return CUDA_PROVIDER in available_providers()
    spec = importlib.util.find_spec("onnxruntime")
    folders = spec.submodule_search_locations if spec is not None else None
    return any(any((Path(f) / "capi").glob("*onnxruntime_providers_cuda*")) for f in folders or ())


def nvidia_gpus() -> int:
    """NVIDIA GPUs the driver reports, through NVML (no CUDA context is made); 0 without the driver."""
    import ctypes

    for name in ("libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll"):
        try:
            nvml = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0
    count = ctypes.c_uint(0)
    try:
        if nvml.nvmlInit_v2() != 0:
            return 0
        try:
            return int(count.value) if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 else 0
        finally:
            nvml.nvmlShutdown()
    except AttributeError:  # an NVML too old for these calls
        return 0


def resolve_device(device: str) -> tuple[str, str]:
    """The device a run uses for ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``), and why.

    ``"auto"`` is CUDA when onnxruntime has its CUDA provider (onnxruntime-gpu) and the NVIDIA driver
    reports a GPU, else the CPU: a workstation with a GPU uses it without being told.
    """
    if device != "auto":
        return device, "asked for"
    if not cuda_available():
        return "cpu", "auto: onnxruntime has no CUDA provider"
    gpus = nvidia_gpus()
    if gpus == 0:
        return "cpu", "auto: onnxruntime has CUDA, but the NVIDIA driver reports no GPU"
    return "cuda", f"auto: onnxruntime has CUDA and the driver reports {gpus} GPU(s)"


def select_providers(device: str) -> list[str]:
    """onnxruntime providers for ``device``; CPU with a warning when CUDA is missing.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        If ``device`` is neither cpu nor cuda.
    """
    kind = device.split(":", 1)[0].lower()
    if kind == "cpu":
        return [CPU_PROVIDER]
    if kind != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if cuda_available():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    log.warning(
        "face detection: device=%s was requested but onnxruntime has no CUDA execution provider "
        "(available: %s); running on the CPU. Install onnxruntime-gpu (the 'gpu' extra) for CUDA.",
        device,
        ", ".join(available_providers()),
    )
    return [CPU_PROVIDER]


@functools.cache
def preload_cuda() -> str:
    """Load the CUDA and cuDNN libraries that pip's nvidia-* wheels hold, once a process (onnxruntime-gpu >= 1.21:
    ``pip install 'onnxruntime-gpu[cuda,cudnn]'`` then needs only the NVIDIA driver); elsewhere the system's serve.
    A note of what happened (benchmarks/gpu_check.py prints it)."""
    import onnxruntime

    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is None:
        return "onnxruntime has no preload_dlls (older than 1.21): CUDA libraries from the system paths"
    try:
        preload()
    except Exception as exc:  # noqa: BLE001 - the system's libraries may still serve; the session says if not
        log.debug("onnxruntime.preload_dlls: %s", exc)
        return f"preload_dlls failed: {exc}"
    return "CUDA/cuDNN libraries preloaded"


def _ort_session(model: Path | bytes, providers: list[str], threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime

    if CUDA_PROVIDER in providers:
        preload_cuda()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    chosen = [(p, CUDA_OPTIONS) if p == CUDA_PROVIDER else p for p in providers]
    session = onnxruntime.InferenceSession(source, sess_options=options, providers=chosen)
    if CUDA_PROVIDER in providers and CUDA_PROVIDER not in session.get_providers():
        # onnxruntime drops CUDA silently when cuDNN or the driver is missing.
        log.warning("face detection: onnxruntime could not start CUDA (missing CUDA/cuDNN libraries?); on CPU.")
    return session


class ShapeSessions:
    """Inference sessions by input shape, the ``limit`` most recently used kept (see CUDA_OPTIONS).

    Parameters
    ----------
    make : callable
        Makes a new session.
    limit : int
        Sessions kept; the least recently used one is dropped beyond it.
    first : session, optional
        A session already made, given to the first shape asked for.
    """

    def __init__(self, make: Callable[[], object], limit: int, first: object | None = None) -> None:
        self._make = make
        self._limit = max(1, limit)
        self._spare = first
        self._by_shape: OrderedDict[tuple[int, int], object] = OrderedDict()

    def get(self, shape: tuple[int, int]):  # type: ignore[no-untyped-def]
        """The session for ``shape``, made on first use."""
        session = self._by_shape.pop(shape, None)
        if session is None:
            session, self._spare = (self._spare if self._spare is not None else self._make()), None
        self._by_shape[shape] = session
        while len(self._by_shape) > self._limit:
            self._by_shape.popitem(last=False)
        return session

    def __len__(self) -> int:
        return len(self._by_shape)


def _has_onnx() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (boxes as x, y, w, h)."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), score_threshold, nms_threshold, top_k=top_k)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


class FaceDetector(ABC):
    """A face detector; one instance per worker (see :func:`get_face_detector`).

    Parameters
    ----------
    model_path : Path
        The verified weight file (from :func:`models.registry.ensure_model`).
    score_threshold : float
        Faces scoring below this are dropped.
    nms_threshold : float
        IoU above which the lower-scoring of two boxes is dropped.
    device : str
        ``"cpu"`` or ``"cuda"``; CUDA falls back to the CPU with a warning.
    threads : int
        CPU threads for inference.
    """

    backend: ClassVar[str]
    model_name: ClassVar[str]
    #: Score under which :func:`detect_on_proxy` confirms a detection at smaller scales (0: never).
    verify_below_score: ClassVar[float] = 0.0

    def __init__(
        self, model_path: Path, score_threshold: float, nms_threshold: float, device: str = "cpu", threads: int = 1
    ) -> None:
        self.model_path = Path(model_path)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.device = device
        self.threads = threads
        # Inference objects keep per-call state (input size); one image at a time.
        self._lock = threading.Lock()

    @property
    @abstractmethod
    def providers(self) -> list[str]:
        """Where inference actually runs (onnxruntime providers, or ``["opencv-cpu"]``)."""

    @abstractmethod
    def detect(self, bgr_uint8: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        """Faces in an 8-bit BGR image, best score first.

        ``score_threshold`` overrides the detector's own for this call (the
        second-scale check of :func:`holds_at_second_scale` looks lower).

        Raises
        ------
        ValueError
            If the image is not ``(H, W, 3)`` uint8.
        """

    @staticmethod
    def _check(bgr: np.ndarray) -> np.ndarray:
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"detector input must be an (H, W, 3) uint8 BGR image, got {bgr.dtype} {bgr.shape}")
        return np.ascontiguousarray(bgr)


class YuNetDetector(FaceDetector):
    """YuNet (libfacedetection), on onnxruntime or on OpenCV's ``FaceDetectorYN``.

    ``runtime="auto"`` picks onnxruntime (CPU or CUDA provider) whenever the
    ``onnx`` package is there to free the model's input size, else OpenCV
    (CPU only). Both give the same faces (within 0.05 px on the test photos;
    the decode here is OpenCV's), but with OpenCV 5's new graph engine
    ``FaceDetectorYN`` is about 2-3x slower than onnxruntime on one CPU thread
    (benchmarks/bench_faces.py), so OpenCV stays as the reference runtime.
    """

    backend = "yunet"
    model_name = "yunet_2023mar"
    verify_below_score = VERIFY_BELOW_SCORE
    strides = (8, 16, 32)
    top_k = 5000

    def __init__(
        self,
        model_path: Path,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        device: str = "cpu",
        threads: int = 1,
        runtime: Runtime = "auto",
    ) -> None:
        super().__init__(model_path, score_threshold, nms_threshold, device, threads)
        if runtime == "auto":
            runtime = "onnxruntime" if _has_onnx() or device.startswith("cuda") else "opencv"
        if runtime == "opencv" and device.startswith("cuda"):
            log.warning("face detection: YuNet on OpenCV runs on the CPU only; use runtime 'onnxruntime' for CUDA.")
        self.runtime = runtime
        if runtime == "opencv":
            self._cv = cv2.FaceDetectorYN.create(
                str(self.model_path), "", (320, 320), score_threshold, nms_threshold, self.top_k
            )
            self._session = None
        else:
            self._cv = None
            model, providers = self._dynamic_model(), select_providers(device)
            self._session = _ort_session(model, providers, threads)
            self._input_name = self._session.get_inputs()[0].name
            self._output_names = [o.name for o in self._session.get_outputs()]
            self._cuda: ShapeSessions | None = None
            if CUDA_PROVIDER in self._session.get_providers():
                self._cuda = ShapeSessions(lambda: _ort_session(model, providers, threads), CUDA_SHAPE_SESSIONS,
                                           first=self._session)
                self._session = _ort_session(model, [CPU_PROVIDER], threads)  # inputs under CUDA_MIN_PIXELS
            self._providers = list(self._session.get_providers() if self._cuda is None else providers)

    def _dynamic_model(self) -> bytes:
        """The ONNX graph with its fixed 640x640 input made free.

        The released file declares 1x3x640x640, but every op in it is
        convolutional or shape-agnostic, so (as OpenCV does when it reshapes
        the net) the input size can follow the image and no letterboxing to
        640 wastes work or shrinks small faces. Edited on the protobuf wire
        (:func:`models.onnx_wire.free_input_size`): ``import onnx`` would cost
        about a second a process.
        """
        return free_input_size(self.model_path.read_bytes(), {2: "height", 3: "width"}, output_dim=1)

    @property
    def providers(self) -> list[str]:
        return ["opencv-cpu"] if self._session is None else self._providers

    def detect(self, bgr_uint8: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        bgr = self._check(bgr_uint8)
        h, w = bgr.shape[:2]
        threshold = self.score_threshold if score_threshold is None else score_threshold
        with self._lock:
            if self._cv is not None:
                self._cv.setInputSize((w, h))
                self._cv.setScoreThreshold(threshold)
                try:
                    _, faces = self._cv.detect(bgr)
                finally:
                    self._cv.setScoreThreshold(self.score_threshold)
                rows = np.zeros((0, 15), np.float32) if faces is None else faces
            else:
                rows = self._detect_ort(bgr, threshold)
        out = [
            Detection(
                box=tuple(float(v) for v in r[:4]),  # type: ignore[arg-type]
                landmarks=tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5)),
                score=float(r[14]),
            )
            for r in rows
        ]
        return sorted(out, key=lambda d: -d.score)

    def _detect_ort(self, bgr: np.ndarray, score_threshold: float) -> np.ndarray:
        h, w = bgr.shape[:2]
        # As FaceDetectorYN: pad right and bottom to a multiple of the largest stride.
        pad_h, pad_w = -(-h // 32) * 32, -(-w // 32) * 32
        padded = cv2.copyMakeBorder(bgr, 0, pad_h - h, 0, pad_w - w, cv2.BORDER_CONSTANT, value=0)
        blob = padded.transpose(2, 0, 1)[None].astype(np.float32)  # BGR, 0-255, no mean: YuNet's training input
        session = self._session
        if self._cuda is not None and pad_h * pad_w >= CUDA_MIN_PIXELS:
            session = self._cuda.get((pad_h, pad_w))
        outputs = dict(zip(self._output_names, session.run(self._output_names, {self._input_name: blob})))
        return decode_yunet(outputs, pad_w, pad_h, self.strides, score_threshold, self.nms_threshold, self.top_k)


def decode_yunet(
    outputs: dict[str, np.ndarray],
    pad_w: int,
    pad_h: int,
    strides: tuple[int, ...] = (8, 16, 32),
    score_threshold: float = 0.7,
    nms_threshold: float = 0.3,
    top_k: int = 5000,
) -> np.ndarray:
    """Decode YuNet's raw outputs into ``(N, 15)`` rows like ``FaceDetectorYN``.

    Each row is ``x, y, w, h``, five landmark ``(x, y)`` pairs and the score,
    in the padded input's pixels. Follows OpenCV's ``FaceDetectorYNImpl::
    postProcess``: score = sqrt(clip(cls) * clip(obj)); box centre = (cell +
    offset) * stride, size = exp(log-size) * stride; landmarks = (cell +
    offset) * stride; then NMS.

    Parameters
    ----------
    outputs : dict
        ``cls_S``, ``obj_S``, ``bbox_S``, ``kps_S`` arrays for each stride S.
    pad_w, pad_h : int
        Size of the network input (multiples of 32).

    Raises
    ------
    KeyError
        If an output of the model is missing.
    ValueError
        If an output's size does not match ``pad_w`` x ``pad_h``.
    """
    boxes, kps_all, scores = [], [], []
    for s in strides:
        cols, rows = pad_w // s, pad_h // s
        cls = np.clip(outputs[f"cls_{s}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{s}"].reshape(-1), 0, 1)
        bbox = outputs[f"bbox_{s}"].reshape(-1, 4)
        kps = outputs[f"kps_{s}"].reshape(-1, 10)
        if cols * rows != cls.size:
            raise ValueError(f"stride {s}: {cls.size} anchors for a {pad_w}x{pad_h} input, expected {cols * rows}")
        score = np.sqrt(cls * obj)
        sel = np.nonzero(score >= score_threshold)[0]
        if sel.size == 0:
            continue
        c = (sel % cols).astype(np.float32)
        r = (sel // cols).astype(np.float32)
        cx = (c + bbox[sel, 0]) * s
        cy = (r + bbox[sel, 1]) * s
        bw = np.exp(bbox[sel, 2]) * s
        bh = np.exp(bbox[sel, 3]) * s
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1))
        k = kps[sel].copy()
        k[:, 0::2] = (k[:, 0::2] + c[:, None]) * s
        k[:, 1::2] = (k[:, 1::2] + r[:, None]) * s
        kps_all.append(k)
        scores.append(score[sel])
    if not boxes:
        return np.zeros((0, 15), np.float32)
    b, k, sc = np.concatenate(boxes), np.concatenate(kps_all), np.concatenate(scores)
    keep = nms(b, sc, score_threshold, nms_threshold, top_k)
    return np.concatenate([b[keep], k[keep], sc[keep, None]], axis=1).astype(np.float32)


class ScrfdDetector(FaceDetector):
    """InsightFace SCRFD-500M (with keypoints) on onnxruntime.

    Only for users who hold a licence for InsightFace's pretrained weights
    (non-commercial research otherwise). Needs the ``insightface`` extra.
    """

    backend = "scrfd"
    model_name = "scrfd_500m"
    # Its scores are on another scale and the check was measured on YuNet only.
    verify_below_score = 0.0

    def __init__(
        self,
        model_path: Path,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        device: str = "cpu",
        threads: int = 1,
    ) -> None:
        super().__init__(model_path, score_threshold, nms_threshold, device, threads)
        try:
            from insightface.model_zoo.scrfd import SCRFD
        except ImportError as exc:
            raise ImportError(
                "the scrfd backend needs InsightFace: pip install 'postprod[insightface]' "
                "(and a licence for InsightFace's weights), or use backend 'yunet'"
            ) from exc
        session = _ort_session(self.model_path, select_providers(device), threads)
        self._model = SCRFD(model_file=str(self.model_path), session=session)
        self._model.prepare(ctx_id=0 if CUDA_PROVIDER in session.get_providers() else -1, nms_thresh=nms_threshold)

    @property
    def providers(self) -> list[str]:
        return list(self._model.session.get_providers())

    def detect(self, bgr_uint8: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        bgr = self._check(bgr_uint8)
        h, w = bgr.shape[:2]
        threshold = self.score_threshold if score_threshold is None else score_threshold
        # SCRFD letterboxes into its input size; give it the image's own size,
        # rounded up to its stride, so faces are not shrunk.
        size = (-(-w // 32) * 32, -(-h // 32) * 32)
        with self._lock:
            det, kps = self._model.detect(bgr, input_size=size, det_thresh=threshold)
        out = []
        for i in range(det.shape[0]):
            x1, y1, x2, y2, score = (float(v) for v in det[i])
            points = tuple((float(px), float(py)) for px, py in kps[i]) if kps is not None else ()
            out.append(Detection(box=(x1, y1, x2 - x1, y2 - y1), landmarks=points, score=score))
        return sorted(out, key=lambda d: -d.score)


BACKENDS: dict[str, type[FaceDetector]] = {
    YuNetDetector.backend: YuNetDetector,
    ScrfdDetector.backend: ScrfdDetector,
}


def create_face_detector(
    backend: Backend = "yunet",
    device: str = "cpu",
    score_threshold: float | None = None,
    nms_threshold: float | None = None,
    threads: int = 1,
    **kwargs: object,
) -> FaceDetector:
    """A new detector for ``backend``, its weights fetched and verified.

    Raises
    ------
    ValueError
        If the backend is unknown.
    models.registry.ModelError
        If the weights are missing (offline) or do not match their hash.
    """
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown face detector backend {backend!r} (known: {', '.join(BACKENDS)})") from None
    path = ensure_model(cls.model_name)
    options: dict[str, object] = dict(kwargs)
    if score_threshold is not None:
        options["score_threshold"] = score_threshold
    if nms_threshold is not None:
        options["nms_threshold"] = nms_threshold
    return cls(path, device=device, threads=threads, **options)  # type: ignore[arg-type]


def get_face_detector(
    backend: Backend = "yunet",
    device: str = "cpu",
    score_threshold: float | None = None,
    nms_threshold: float | None = None,
    threads: int = 1,
    **kwargs: object,
) -> FaceDetector:
    """The worker's detector for these settings, loaded once (under a lock) and shared."""
    if backend == "yunet":
        # The default named: detect_faces passes its runtime, inspect_equipment's second look does not,
        # and with the same settings both use one session (a second costs 50-60 ms of the run's start).
        kwargs.setdefault("runtime", "auto")
    key = ("face_detector", backend, device, score_threshold, nms_threshold, threads, tuple(sorted(kwargs.items())))
    return load_once(
        key, lambda: create_face_detector(backend, device, score_threshold, nms_threshold, threads, **kwargs)
    )  # type: ignore[return-value]


def detector_input(rgb8: np.ndarray, long_edge: int) -> tuple[np.ndarray, float]:
    """BGR detector input no larger than ``long_edge``, and its size relative to ``rgb8``.

    Never upscales: on the PASCAL VOC set, upscaling 500 px photos to 960 or
    1280 px found no more faces and made YuNet fire on background texture
    10-15 px across.
    """
    h, w = rgb8.shape[:2]
    factor = min(1.0, long_edge / max(h, w))
    if factor < 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb8 = cv2.resize(rgb8, size, interpolation=cv2.INTER_AREA)
        factor = size[0] / w
    if rgb8.ndim == 3 and rgb8.shape[2] == 3 and rgb8.dtype == np.uint8:
        # The channels swapped by OpenCV: the bytes numpy's reversed-stride copy gives, faster (the
        # detector's 1280 px input 26.4 -> 18.7 CPU ms, RESULTS.md run Y).
        return cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR), factor
    return np.ascontiguousarray(rgb8[..., ::-1]), factor  # malformed: the detector's own check words it


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def second_scale_score(detector: FaceDetector, bgr: np.ndarray, face: Detection, scale: float = VERIFY_SCALE,
                       min_score: float = VERIFY_MIN_SCORE) -> float:
    """The best score the detector gives ``face`` when it looks again at ``scale`` times the size.

    A crop of the image around the face (:data:`_VERIFY_CONTEXT` box sizes
    either side of its centre) is resized by ``scale`` and detected again,
    down to ``min_score``; the score of the detection that overlaps the face
    (IoU >= 0.4) is returned, 0.0 when none does. A face stays a face when it
    is a little smaller; the textures YuNet mistakes for one at a single
    scale (the wood grain and oars of a boat, a leaf's shadow) do not.

    Parameters
    ----------
    detector : FaceDetector
        The detector that found ``face``.
    bgr : ndarray, uint8, (H, W, 3)
        The image the detector saw (``face`` is in its pixels).
    face : Detection
        The detection to confirm.
    scale : float
        Size of the second look relative to the first, > 0.
    min_score : float
        Lowest score looked for at the second scale.

    Raises
    ------
    ValueError
        If ``scale`` is not positive or ``bgr`` is not an (H, W, 3) uint8 image.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    h, w = bgr.shape[:2]
    x, y, bw, bh = face.box
    cx, cy, half = x + bw / 2, y + bh / 2, _VERIFY_CONTEXT * max(bw, bh)
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    crop = bgr[y0:y1, x0:x1]
    size = (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale)))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    target = ((x - x0) * fx, (y - y0) * fy, bw * fx, bh * fy)
    return max((d.score for d in detector.detect(crop, score_threshold=min_score) if _iou(d.box, target) >= 0.4),
               default=0.0)


def holds_at_second_scale(detector: FaceDetector, bgr: np.ndarray, face: Detection,
                          below: float = VERIFY_BELOW_SCORE) -> bool:
    """Whether a detection is kept: sure (score >= ``below``) or found again when smaller.

    An unsure face must score :data:`VERIFY_MIN_SCORE` or more at
    :data:`VERIFY_SCALE` of its size, and, when it is :data:`VERIFY_HALF_MIN_PX`
    wide or more, at :data:`VERIFY_HALF_SCALE` too (:func:`second_scale_score`).

    Raises
    ------
    ValueError
        If ``bgr`` is not an (H, W, 3) uint8 image.
    """
    if face.score >= below:
        return True
    scales = (VERIFY_SCALE, VERIFY_HALF_SCALE) if face.box[2] >= VERIFY_HALF_MIN_PX else (VERIFY_SCALE,)
    return all(second_scale_score(detector, bgr, face, s) >= VERIFY_MIN_SCORE for s in scales)


def pushed(bgr: np.ndarray, ev: float) -> np.ndarray:
    """An 8-bit sRGB image pushed ``ev`` EV in linear light, clipped at white (a 256-entry table)."""
    levels = srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0))
    table = to_srgb8(levels * np.float32(2.0**ev)).reshape(256)
    return cv2.LUT(bgr, table)


def shadow_room(luma8: np.ndarray, level: int = SHADOW_LUMA, face_px: int = SHADOW_MIN_FACE_PX) -> bool:
    """Whether a face ``face_px`` wide could hide in shadow: a square that size averaging under ``level``.

    Raises
    ------
    ValueError
        If ``luma8`` is not a 2-D uint8 image.
    """
    if luma8.dtype != np.uint8 or luma8.ndim != 2:
        raise ValueError(f"luma must be a 2-D uint8 image, got {luma8.dtype} {luma8.shape}")
    h, w = luma8.shape
    if min(h, w) < face_px:
        return False
    # Cells of a quarter face: a face-wide square's mean is a 4x4 block of cells' mean.
    cell = max(1, face_px // 4)
    cells = cv2.resize(luma8, (w // cell, h // cell), interpolation=cv2.INTER_AREA).astype(np.float32)
    return bool(cv2.blur(cells, (4, 4), borderType=cv2.BORDER_REFLECT).min() < level)


def shadowed_faces(detector: FaceDetector, bgr: np.ndarray, found: list[Detection],
                   below: float, push_ev: float = SHADOW_PUSH_EV) -> list[Detection]:
    """Faces in shadow that a first pass missed, found on a copy pushed ``push_ev`` EV.

    Runs only when the image has room for a face in shadow (:func:`shadow_room`).
    A detection on the pushed copy is kept when it is
    :data:`SHADOW_FACE_MIN_PX` wide or more and scores :data:`SHADOW_MIN_SCORE`
    or more, its centre half is in shadow in
    ``bgr`` (mean luma under :data:`SHADOW_LUMA`), it overlaps no face of
    ``found``, and it passes :func:`holds_at_second_scale` on the pushed copy.

    Parameters
    ----------
    detector : FaceDetector
        The detector of the first pass.
    bgr : ndarray, uint8, (H, W, 3)
        The first pass's input.
    found : list of Detection
        The first pass's faces, in ``bgr``'s pixels.
    below : float
        Score under which a face must hold at a second scale (0: every face kept).
    push_ev : float
        The push of the second look, EV in linear light.

    Raises
    ------
    ValueError
        If ``bgr`` is not an (H, W, 3) uint8 image.
    """
    bgr = FaceDetector._check(bgr)
    luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if not shadow_room(luma):
        return []
    lifted = pushed(bgr, push_ev)
    out: list[Detection] = []
    for d in detector.detect(lifted):
        if d.score < SHADOW_MIN_SCORE or d.box[2] < SHADOW_FACE_MIN_PX or any(_iou(d.box, f.box) > 0.0 for f in (*found, *out)):
            continue
        x, y, w, h = d.box
        x0, y0 = max(0, int(x + w / 4)), max(0, int(y + h / 4))
        centre = luma[y0:max(y0 + 1, int(y + 3 * h / 4)), x0:max(x0 + 1, int(x + 3 * w / 4))]
        if centre.size == 0 or float(centre.mean()) >= SHADOW_LUMA:
            continue
        if holds_at_second_scale(detector, lifted, d, below):
            out.append(d)
    return out


def detect_on_proxy(detector: FaceDetector, rgb8: np.ndarray, proxy_scale: float, long_edge: int,
                    verify_below: float | None = None, shadow_pass: bool = True) -> list[Detection]:
    """Detect faces on an 8-bit RGB proxy; return them in full-resolution pixels (:func:`detect_with_unsure`'s
    faces)."""
    return detect_with_unsure(detector, rgb8, proxy_scale, long_edge, verify_below, shadow_pass)[0]


def detect_with_unsure(detector: FaceDetector, rgb8: np.ndarray, proxy_scale: float, long_edge: int,
                       verify_below: float | None = None, shadow_pass: bool = True,
                       unsure_score: float | None = None) -> tuple[list[Detection], list[Detection]]:
    """Detect faces on an 8-bit RGB proxy; return them, and the unsure ones, in full-resolution pixels.

    Detections scoring under ``verify_below`` must be found again at smaller
    scales (:func:`holds_at_second_scale`) to be kept.

    Parameters
    ----------
    detector : FaceDetector
        Any backend.
    rgb8 : ndarray, uint8, (H, W, 3)
        The proxy in sRGB (``Proxy.srgb8``), oriented.
    proxy_scale : float
        Full-resolution pixels per proxy pixel (``Proxy.scale``).
    long_edge : int
        Largest long edge the detector sees; larger proxies are downscaled.
    verify_below : float, optional
        Score under which a detection must be confirmed at smaller scales; 0 keeps every
        detection; None for the backend's own (``FaceDetector.verify_below_score``).
    shadow_pass : bool
        Also look for faces in shadow on a pushed copy (:func:`shadowed_faces`).
    unsure_score : float, optional
        Also return the detections of the same run scoring this or more that are not kept (under the detector's
        own threshold, or not found again at a second scale) and overlap no face kept: what a chart that blurs
        faces for privacy blurs too. None: none returned. The faces kept are the same either way (the detector
        runs once, at the lower threshold; a weaker box never suppresses a stronger one).

    Returns
    -------
    (list of Detection, list of Detection)
        The faces, and the unsure detections.

    Raises
    ------
    ValueError
        If ``rgb8`` is not an (H, W, 3) uint8 image.
    """
    bgr, factor = detector_input(rgb8, long_edge)
    below = detector.verify_below_score if verify_below is None else verify_below
    if unsure_score is None:
        raw, sure = detector.detect(bgr), 0.0
    else:
        sure = detector.score_threshold
        raw = detector.detect(bgr, score_threshold=min(sure, unsure_score))
    found = [d for d in raw if d.score >= sure and holds_at_second_scale(detector, bgr, d, below)]
    if shadow_pass:
        found += shadowed_faces(detector, bgr, found, below)
    unsure: list[Detection] = []
    if unsure_score is not None:
        for d in raw:
            if d.score >= unsure_score and not any(_iou(d.box, f.box) > 0.0 for f in (*found, *unsure)):
                unsure.append(d)
    scale = proxy_scale / factor
    return [d.scaled(scale) for d in found], [d.scaled(scale) for d in unsure]
