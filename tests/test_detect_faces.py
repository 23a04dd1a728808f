"""Face detection: the model registry, the detector backends, the stage.

Tier 1: synthetic arrays and stubbed detectors with the expected values inline.
Tier 2: the real detectors on real photos with human-drawn face boxes
(PASCAL VOC, dlib's ``boxes.xml``); weights come from the shared model folder,
never from the network (``POSTPROD_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from models import onnx_wire, registry
from models import face_detectors
from models.face_detectors import (
    CUDA_MIN_PIXELS,
    SHADOW_MIN_FACE_PX,
    VERIFY_BELOW_SCORE,
    Detection,
    FaceDetector,
    YuNetDetector,
    create_face_detector,
    cuda_available,
    decode_yunet,
    detect_on_proxy,
    detector_input,
    pushed,
    second_scale_score,
    select_providers,
    ShapeSessions,
    shadow_room,
)
from models.registry import ModelEntry, ModelError, ModelTask, ensure_model, fetch_model
from pipeline.imaging.color import Proxy, srgb_to_linear
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.faces import face_exposure_ev, face_sharpness, measure_faces, min_face_size
from pipeline.imaging.measure.metering import FACE_LOG2, tone_curve
from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.records import MANIFEST_FIELDS, Face, ImageRecord, SourceKind
from pipeline.kernel.runner import Runner
from pipeline.kernel.schema import FACES_SCHEMA, MANIFEST_SCHEMA, face_rows, to_table, write_parquet_atomic
from pipeline.kernel.stage import RunContext


@pytest.fixture(autouse=True)
def offline_models(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Never touch the network; use the shared model copies when a test needs real weights."""
    monkeypatch.setenv("POSTPROD_OFFLINE", "1")
    monkeypatch.setenv("POSTPROD_MODEL_DIR", "/nonexistent-postprod-models")
    registry.clear_loaded()


@pytest.fixture
def shared_models(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(model_dir))
    return model_dir


def load_boxes(faces_dir: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    root = ET.parse(faces_dir / "boxes.xml").getroot()
    return {
        im.get("file"): [
            tuple(float(b.get(k)) for k in ("left", "top", "width", "height")) for b in im.iter("box")
        ]
        for im in root.iter("image")
    }


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match(truth, found, min_iou: float = 0.3) -> tuple[int, int]:
    """(true positives, false positives), greedy by score as the usual face benchmarks count."""
    used: set[int] = set()
    tp = fp = 0
    for box, _score in sorted(found, key=lambda f: -f[1]):
        best, best_iou = None, 0.0
        for i, t in enumerate(truth):
            if i not in used and iou(box, t) > best_iou:
                best, best_iou = i, iou(box, t)
        if best is not None and best_iou >= min_iou:
            used.add(best)
            tp += 1
        else:
            fp += 1
    return tp, fp


def linear_proxy(path: Path, scale: float = 1.0) -> Proxy:
    bgr = cv2.imread(str(path))
    rgb = srgb_to_linear(bgr[..., ::-1].astype(np.float32) / 255.0)
    return Proxy(rgb=np.ascontiguousarray(rgb), scale=scale)


# --- registry (tier 1) ------------------------------------------------------------
def test_registry_entries_are_pinned_and_https():
    for entry in registry.REGISTRY.values():
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0
        assert entry.urls and all(u.startswith("https://") for u in entry.urls)
        assert entry.licence and entry.task is ModelTask.FACE_DETECTION
    with pytest.raises(ValueError, match="https"):
        ModelEntry("x", "x.onnx", "0" * 64, ("http://example.com/x.onnx",), "MIT", ModelTask.FACE_DETECTION, "yunet")


def test_registry_hashes_match_the_shared_release_copies(testdata: Path):
    sums = {
        Path(name).name: digest
        for digest, name in (line.split(maxsplit=1) for line in (testdata / "SHA256SUMS").read_text().splitlines())
    }
    for entry in registry.REGISTRY.values():
        assert sums[entry.filename] == entry.sha256, entry.name


def test_registry_refuses_a_file_with_the_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(tmp_path))
    (tmp_path / registry.YUNET_2023MAR.filename).write_bytes(b"not the YuNet weights")
    with pytest.raises(ModelError, match="will not be loaded") as info:
        ensure_model("yunet_2023mar")
    assert "postprod models fetch yunet_2023mar" in str(info.value)
    # Loading goes through the registry, so the detector refuses it too.
    with pytest.raises(ModelError):
        create_face_detector("yunet")


def test_offline_error_names_the_fetch_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="POSTPROD_OFFLINE=1") as info:
        ensure_model("scrfd_500m")
    assert "`postprod models fetch scrfd_500m`" in str(info.value)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ModelError, match="unknown model 'nope'.*yunet_2023mar"):
        ensure_model("nope")


def test_ensure_model_returns_the_verified_shared_copy(shared_models: Path):
    assert ensure_model("yunet_2023mar") == shared_models / "face_detection_yunet_2023mar.onnx"
    assert registry.model_status("scrfd_500m") == (True, True)


def _zip_with(member: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"pack/{member}", payload)
        zf.writestr("pack/other.onnx", b"other")
    return buf.getvalue()


def test_download_extracts_and_verifies_a_pack_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    payload = b"weights of the detector"
    entry = ModelEntry(
        "toy", "toy.onnx", hashlib.sha256(payload).hexdigest(), ("https://example.invalid/pack.zip",),
        "MIT", ModelTask.FACE_DETECTION, "yunet", archive_member="det.onnx",
    )  # fmt: skip
    served: list[bytes] = [_zip_with("det.onnx", payload)]

    def fake_stream(url, dest, progress):  # no network in tests: serve the pack from memory
        assert url.startswith("https://")
        data = served[0]
        dest.write(data)
        return hashlib.sha256(data).hexdigest()

    monkeypatch.setattr(registry, "_stream", fake_stream)
    path = registry.download_model(entry, tmp_path / "toy.onnx")
    assert path.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.onnx"]  # temporary files removed

    served[0] = _zip_with("det.onnx", b"tampered weights")
    with pytest.raises(ModelError, match="expected"):
        registry.download_model(entry, tmp_path / "toy2.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.onnx"]  # nothing left under the real name


def test_a_failed_download_says_how_to_use_a_file_already_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    entry = ModelEntry("toy", "toy.onnx", "0" * 64, ("https://example.invalid/toy.onnx",), "MIT",
                       ModelTask.FACE_DETECTION, "yunet")

    def unreachable(url, dest, progress):
        raise OSError("Name or service not known")

    monkeypatch.setattr(registry, "_stream", unreachable)
    with pytest.raises(ModelError) as failed:
        registry.download_model(entry, tmp_path / "toy.onnx")
    message = str(failed.value)
    assert "https://example.invalid/toy.onnx: Name or service not known" in message
    assert f"into {tmp_path}" in message and "postprod models verify" in message
    assert "set POSTPROD_MODEL_DIR to the folder that holds it" in message
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_fetch_refuses_to_download_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POSTPROD_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="unset it"):
        fetch_model("yunet_2023mar")


def test_detector_is_loaded_once_per_worker(shared_models: Path):
    from models.face_detectors import get_face_detector

    a = get_face_detector("yunet", "cpu", 0.7)
    assert get_face_detector("yunet", "cpu", 0.7) is a
    assert get_face_detector("yunet", "cpu", 0.8) is not a
    # detect_faces names YuNet's runtime, inspect_equipment's second look leaves it to the default: one session.
    assert get_face_detector("yunet", "cpu", 0.7, runtime="auto") is a
    assert get_face_detector("yunet", "cpu", 0.7, runtime="opencv") is not a


# --- decoding and coordinates (tier 1) -------------------------------------------------
def test_decode_yunet_follows_opencv_postprocess():
    # A 64x32 input: stride 8 gives an 8x4 grid; one anchor at row 1, column 2 fires.
    pad_w, pad_h = 64, 32
    outputs = {}
    for s in (8, 16, 32):
        n = (pad_w // s) * (pad_h // s)
        outputs[f"cls_{s}"] = np.zeros((1, n, 1), np.float32)
        outputs[f"obj_{s}"] = np.zeros((1, n, 1), np.float32)
        outputs[f"bbox_{s}"] = np.zeros((1, n, 4), np.float32)
        outputs[f"kps_{s}"] = np.zeros((1, n, 10), np.float32)
    idx = 1 * 8 + 2
    outputs["cls_8"][0, idx, 0] = 0.81
    outputs["obj_8"][0, idx, 0] = 1.5  # clipped to 1
    outputs["bbox_8"][0, idx] = [0.5, 0.25, math.log(2.0), math.log(3.0)]
    outputs["kps_8"][0, idx] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    rows = decode_yunet(outputs, pad_w, pad_h, score_threshold=0.5)
    assert rows.shape == (1, 15)
    cx, cy, w, h = (2 + 0.5) * 8, (1 + 0.25) * 8, 16.0, 24.0
    np.testing.assert_allclose(rows[0, :4], [cx - w / 2, cy - h / 2, w, h], atol=1e-5)
    np.testing.assert_allclose(rows[0, 4:6], [(2 + 0.1) * 8, (1 + 0.2) * 8], atol=1e-5)
    np.testing.assert_allclose(rows[0, 14], 0.9, atol=1e-6)  # sqrt(0.81 * 1)
    assert decode_yunet(outputs, pad_w, pad_h, score_threshold=0.95).shape == (0, 15)


class StubDetector(FaceDetector):
    """Finds one face at a fixed place in whatever image it is given."""

    backend = "stub"
    model_name = "stub"

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    @property
    def providers(self) -> list[str]:
        return ["stub"]

    def detect(self, bgr_uint8: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        self.seen.append(bgr_uint8.shape)
        pts = ((12.0, 25.0), (30.0, 25.0), (21.0, 35.0), (14.0, 45.0), (28.0, 45.0))
        return [Detection(box=(10.0, 20.0, 30.0, 40.0), landmarks=pts, score=0.9)]


def test_detections_map_to_full_resolution_through_both_scales():
    stub = StubDetector()
    proxy_rgb8 = np.zeros((300, 400, 3), np.uint8)
    # Proxy is 1/5 of full resolution; the detector sees a 200-px-long image (half the proxy).
    (d,) = detect_on_proxy(stub, proxy_rgb8, proxy_scale=5.0, long_edge=200)
    # The first look, and the shadow pass's on the pushed copy (a black proxy is all shadow), whose
    # same face overlaps the first look's and is not added again.
    assert stub.seen == [(150, 200, 3)] * 2
    assert d.box == pytest.approx((100.0, 200.0, 300.0, 400.0))  # x10: /0.5 then x5
    assert d.landmarks[2] == pytest.approx((210.0, 350.0))
    # A proxy smaller than the detector's long edge is not upscaled.
    (d,) = detect_on_proxy(stub, proxy_rgb8, proxy_scale=2.0, long_edge=1280)
    assert stub.seen[-1] == (300, 400, 3) and d.box == pytest.approx((20.0, 40.0, 60.0, 80.0))


def test_real_detections_on_a_reduced_proxy_land_on_the_full_resolution_faces(faces_dir: Path, shared_models: Path):
    det = create_face_detector("yunet")
    rgb8 = cv2.imread(str(faces_dir / "2008_001322.jpg"))[..., ::-1]
    full = detect_on_proxy(det, rgb8, proxy_scale=1.0, long_edge=2000)
    h, w = rgb8.shape[:2]
    half = cv2.resize(rgb8, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    mapped = detect_on_proxy(det, half, proxy_scale=w / (w // 2), long_edge=2000)
    assert len(full) == len(mapped) == 3
    for a in full:
        assert max(iou(a.box, b.box) for b in mapped) > 0.75
    truth = load_boxes(faces_dir)["2008_001322.jpg"]
    assert match(truth, [(d.box, d.score) for d in mapped]) == (3, 0)


def test_cuda_request_without_cuda_falls_back_to_cpu_with_a_warning(caplog: pytest.LogCaptureFixture):
    if cuda_available():
        pytest.skip("this machine has CUDA")
    with caplog.at_level(logging.WARNING, logger="models.face_detectors"):
        assert select_providers("cuda") == ["CPUExecutionProvider"]
    assert "CUDA" in caplog.text and "CPU" in caplog.text
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="cpu' or 'cuda"):
        select_providers("tpu")


def test_shape_sessions_keep_one_session_per_shape_most_recent_first():
    made: list[int] = []

    def make() -> int:
        made.append(len(made))
        return made[-1]

    sessions = ShapeSessions(make, limit=2, first="first")
    assert sessions.get((960, 1280)) == "first"  # the session already made serves the first shape
    assert sessions.get((1280, 960)) == 0
    assert sessions.get((960, 1280)) == "first" and sessions.get((1280, 960)) == 0  # no re-plan on a switch
    assert sessions.get((640, 640)) == 1  # a third shape drops the least recently used: (960, 1280)
    assert len(sessions) == 2 and sessions.get((960, 1280)) == 2 and made == [0, 1, 2]


class _Recording:
    """A real CPU session that says it runs on CUDA and records the input shapes it is given."""

    def __init__(self, session, calls: list, name: str) -> None:  # noqa: ANN001
        self._session, self._calls, self._name = session, calls, name

    def get_providers(self) -> list[str]:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if self._name != "cpu" else ["CPUExecutionProvider"]

    def __getattr__(self, attr: str):  # noqa: ANN204
        return getattr(self._session, attr)

    def run(self, names, feeds):  # noqa: ANN001, ANN201
        self._calls.append((self._name, next(iter(feeds.values())).shape[2:]))
        return self._session.run(names, feeds)


def test_yunet_on_cuda_keeps_a_session_per_shape_and_small_inputs_on_the_cpu(
    faces_dir: Path, shared_models: Path, monkeypatch: pytest.MonkeyPatch
):
    # No GPU in CI: the CUDA sessions are real CPU sessions that say they run on CUDA. What is checked is
    # the routing that gpu_check.py measured on an H200 (a CUDA session re-plans at every shape change).
    real = face_detectors._ort_session
    calls: list = []
    made: list = []

    def fake(model, providers, threads):  # noqa: ANN001, ANN202
        name = "cpu" if providers == ["CPUExecutionProvider"] else f"cuda{len(made)}"
        made.append(name)
        return _Recording(real(model, ["CPUExecutionProvider"], threads), calls, name)

    cpu = create_face_detector("yunet", runtime="onnxruntime")
    monkeypatch.setattr(face_detectors, "_ort_session", fake)
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(face_detectors, "select_providers", lambda device: both)
    cuda = YuNetDetector(ensure_model("yunet_2023mar"), device="cuda")
    assert cuda.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    rgb = cv2.imread(str(sorted(faces_dir.glob("*.jpg"))[0]))
    wide = cv2.resize(rgb, (1280, 960))
    tall = np.ascontiguousarray(np.rot90(wide))
    small = cv2.resize(rgb, (320, 240))
    for image in (wide, tall, wide, tall, small):
        assert [d.box for d in cuda.detect(image)] == [d.box for d in cpu.detect(image)]
    assert small.shape[0] * small.shape[1] < CUDA_MIN_PIXELS <= wide.shape[0] * wide.shape[1]
    assert calls == [("cuda0", (960, 1280)), ("cuda2", (1280, 960)), ("cuda0", (960, 1280)), ("cuda2", (1280, 960)),
                     ("cpu", (256, 320))]
    assert made == ["cuda0", "cpu", "cuda2"]


def test_auto_device_is_cuda_only_with_onnxruntimes_cuda_and_a_gpu(monkeypatch: pytest.MonkeyPatch):
    import ctypes

    assert face_detectors.resolve_device("cpu") == ("cpu", "asked for")
    assert face_detectors.resolve_device("cuda") == ("cuda", "asked for")
    monkeypatch.setattr(face_detectors, "cuda_available", lambda: False)
    assert face_detectors.resolve_device("auto") == ("cpu", "auto: onnxruntime has no CUDA provider")
    monkeypatch.setattr(face_detectors, "cuda_available", lambda: True)
    monkeypatch.setattr(face_detectors, "nvidia_gpus", lambda: 0)
    assert face_detectors.resolve_device("auto")[0] == "cpu"  # onnxruntime-gpu on a machine without a GPU
    monkeypatch.setattr(face_detectors, "nvidia_gpus", lambda: 2)
    assert face_detectors.resolve_device("auto") == ("cuda",
                                                     "auto: onnxruntime has CUDA and the driver reports 2 GPU(s)")
    monkeypatch.undo()

    def no_library(name: str, *a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert face_detectors.nvidia_gpus() == 0  # no NVIDIA driver: no GPU, no error


def test_a_cuda_session_loads_the_pip_cuda_libraries_once(shared_models: Path, monkeypatch: pytest.MonkeyPatch):
    import onnxruntime

    calls: list[int] = []
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda *a, **k: calls.append(1), raising=False)
    face_detectors.preload_cuda.cache_clear()
    try:
        model = ensure_model("yunet_2023mar")
        face_detectors._ort_session(model, ["CPUExecutionProvider"], 1)
        assert calls == []  # the CPU needs none
        for _ in range(2):  # without CUDA here, onnxruntime runs it on the CPU (and the detector warns)
            face_detectors._ort_session(model, ["CUDAExecutionProvider", "CPUExecutionProvider"], 1)
        assert calls == [1]
    finally:
        face_detectors.preload_cuda.cache_clear()


# --- per-face measures (tier 1) -----------------------------------------------------------
def test_face_exposure_ev_on_uniform_grey():
    # Against a face in a well-exposed photograph: 2**FACE_LOG2 of scene light reads 0 EV.
    face = 2.0**FACE_LOG2
    rgb = np.full((100, 100, 3), face / 2, np.float32)
    assert face_exposure_ev(rgb, (10, 10, 50, 50)) == pytest.approx(-1.0, abs=1e-5)
    assert face_exposure_ev(rgb * 4, (10, 10, 50, 50)) == pytest.approx(1.0, abs=1e-5)
    # Only the centre counts: a bright frame around the face does not move it.
    rgb[10:20, 10:60] = 1.0
    assert face_exposure_ev(rgb, (10, 10, 50, 50)) == pytest.approx(-1.0, abs=1e-5)
    assert face_exposure_ev(rgb, (200, 200, 10, 10)) is None
    with pytest.raises(ValueError, match="centre_fraction"):
        face_exposure_ev(rgb, (10, 10, 50, 50), centre_fraction=0)


def test_face_exposure_ev_of_a_rendered_source_is_read_in_scene_light():
    # A JPEG shows the face through the camera's curve: the reading takes it back to scene light.
    shown = float(tone_curve(2.0**FACE_LOG2 / 2))
    rgb = np.full((100, 100, 3), shown, np.float32)
    assert face_exposure_ev(rgb, (10, 10, 50, 50), rendered=True) == pytest.approx(-1.0, abs=0.01)
    assert face_exposure_ev(rgb, (10, 10, 50, 50), rendered=False) != pytest.approx(-1.0, abs=0.2)


def test_face_sharpness_falls_with_blur_and_not_with_size():
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 64)) * 255).astype(np.uint8)
    sharp = np.repeat(cv2.resize(texture, (256, 256), interpolation=cv2.INTER_NEAREST)[..., None], 3, axis=2)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    s_sharp = face_sharpness(sharp, (0, 0, 256, 256))
    assert face_sharpness(blurred, (0, 0, 256, 256)) < s_sharp / 3
    half = cv2.resize(sharp, (128, 128), interpolation=cv2.INTER_AREA)
    assert face_sharpness(half, (0, 0, 128, 128)) == pytest.approx(s_sharp, rel=0.25)


def test_min_face_size_and_too_small_flag():
    assert min_face_size(6000, 4000, 40, 0.02) == 80
    assert min_face_size(500, 375, 40, 0.02) == 40
    proxy = Proxy(rgb=np.full((400, 600, 3), 0.18, np.float32), scale=10.0)
    pts = ((0.0, 0.0),) * 5
    faces = measure_faces(
        proxy,
        [
            Detection((3000.0, 100.0, 79.0, 120.0), pts, 0.8),
            Detection((100.0, 100.0, 400.0, 400.0), pts, 0.9),
            Detection((-50.0, 3900.0, 200.0, 300.0), pts, 0.7),  # runs off the bottom-left corner
        ],
        image_size=(6000, 4000),
    )
    assert [f.x for f in faces] == [0.0, 100.0, 3000.0]  # left to right
    assert [f.too_small for f in faces] == [False, False, True]
    assert (faces[0].y, faces[0].width, faces[0].height) == (3900.0, 150.0, 100.0)  # clipped to the frame
    assert faces[1].exposure_ev == pytest.approx(math.log2(0.18) - FACE_LOG2, abs=1e-5)
    assert len(faces[1].landmarks) == 10


# --- records and schema (tier 1) -----------------------------------------------------------
def _record(faces: list[Face]) -> ImageRecord:
    r = ImageRecord("a/b.jpg", "0" * 64, 10, "jpeg", SourceKind.RASTER)
    r.faces, r.face_count = faces, len(faces)
    return r


def test_faces_travel_on_the_record_but_not_in_the_manifest(tmp_path: Path):
    assert tuple(MANIFEST_SCHEMA.names) == MANIFEST_FIELDS
    face = Face(1.0, 2.0, 30.0, 40.0, 0.9, [float(i) for i in range(10)], -0.5, 0.01, False)
    r = _record([face, Face(5.0, 6.0, 7.0, 8.0, 0.6, [0.0] * 10, None, None, True)])
    row = r.to_row()
    assert "faces" not in row and row["face_count"] == 2
    manifest = to_table([row], MANIFEST_SCHEMA)
    assert manifest.column("face_count").to_pylist() == [2]
    write_parquet_atomic(to_table(face_rows([r]), FACES_SCHEMA), tmp_path / "faces.parquet")
    back = pq.read_table(tmp_path / "faces.parquet").to_pylist()
    assert [b["face_index"] for b in back] == [0, 1]
    assert back[0]["landmarks"] == [float(i) for i in range(10)]
    assert back[0]["exposure_ev"] == -0.5 and back[1]["sharpness"] is None and back[1]["too_small"]
    again = ImageRecord.from_row(row, faces=[face])
    assert again.faces == [face] and again.face_count == 2
    with pytest.raises(ValueError, match="landmark"):
        face_rows([_record([Face(0, 0, 1, 1, 0.5, [0.0] * 4)])])


# --- real photos (tier 2) ----------------------------------------------------------------
def _run_shoot(faces_dir: Path, tmp_path: Path, **params) -> dict[str, ImageRecord]:
    import yaml

    graph_file = tmp_path / "graph.yaml"
    graph_file.write_text(
        yaml.safe_dump(
            {
                "schema_version": 1,
                "name": "faces",
                "stages": [{"stage": "decode_raw"}, {"stage": "detect_faces", "params": params}],
            }
        )
    )
    runner = Runner(load_graph(graph_file), RunContext(shoot_dir=faces_dir, out_dir=tmp_path / "out"))
    runner.setup()
    detector = runner.stages[1].detector
    assert detector.backend == params.get("backend", "yunet")
    if "runtime" in params:
        assert detector.runtime == params["runtime"]
    shoot = scan_shoot(faces_dir)
    return {t.source_path: runner.run(t) for t in shoot.tasks if t.source_kind is SourceKind.RASTER}


def _score(faces_dir: Path, records: dict[str, ImageRecord]) -> tuple[int, int, int]:
    truth = load_boxes(faces_dir)
    assert set(records) == set(truth)
    tp = fp = 0
    for name, boxes in truth.items():
        r = records[name]
        assert r.status == "ok", r.error
        assert r.face_count == len(r.faces)
        t, f = match(boxes, [((fc.x, fc.y, fc.width, fc.height), fc.score) for fc in r.faces])
        tp, fp = tp + t, fp + f
    return tp, fp, sum(len(b) for b in truth.values())


@pytest.mark.parametrize("runtime", ["opencv", "onnxruntime"])
def test_yunet_finds_the_annotated_faces(faces_dir: Path, shared_models: Path, tmp_path: Path, runtime: str):
    # onnxruntime is the path device="cuda" takes, run here on the CPU provider.
    records = _run_shoot(faces_dir, tmp_path, runtime=runtime)
    tp, fp, n = _score(faces_dir, records)
    # Measured: 18/18 faces, 0 false positives (both runtimes).
    assert tp / n >= 0.95 and fp <= 1, (tp, fp, n)
    for r in records.values():
        for f in r.faces:
            assert 0 <= f.x and f.x + f.width <= r.frame.width and 0 <= f.y and f.y + f.height <= r.frame.height
            assert f.exposure_ev is not None and -6 < f.exposure_ev < 3
            assert f.sharpness is not None and f.sharpness > 0
            # Eyes above the mouth, and inside the box.
            assert f.landmarks[1] < f.landmarks[7] and f.x <= f.landmarks[0] <= f.x + f.width
    # The 37-px faces of the group shots are under the 40-px floor; the 76-90 px ones are not.
    assert all(f.too_small for f in records["2007_007763.jpg"].faces if f.width < 38 and f.height < 38)
    assert not any(f.too_small for f in records["2008_001009.jpg"].faces)


def test_yunet_onnxruntime_decode_matches_opencv(faces_dir: Path, shared_models: Path):
    cv = create_face_detector("yunet", runtime="opencv")
    ort = create_face_detector("yunet", runtime="onnxruntime")
    assert isinstance(ort, YuNetDetector) and ort.providers == ["CPUExecutionProvider"]
    for name in load_boxes(faces_dir):
        bgr = cv2.imread(str(faces_dir / name))
        a, b = cv.detect(bgr), ort.detect(bgr)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert np.allclose(x.box, y.box, atol=0.05) and abs(x.score - y.score) < 1e-3
            assert np.allclose(x.landmarks, y.landmarks, atol=0.05)


def test_the_wire_edit_is_the_onnx_packages_own(shared_models: Path):
    """models/onnx_wire.py frees YuNet's input size byte for byte as the onnx package serialises the same edit."""
    onnx = pytest.importorskip("onnx")
    src = (shared_models / "face_detection_yunet_2023mar.onnx").read_bytes()
    assert onnx_wire.encode(onnx_wire.parse(src)) == src
    model = onnx.load_model_from_string(src)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, label in ((dims[2], "height"), (dims[3], "width")):
        dim.ClearField("dim_value")
        dim.dim_param = label
    for out in model.graph.output:
        d = out.type.tensor_type.shape.dim[1]
        d.ClearField("dim_value")
        d.dim_param = f"{out.name}_anchors"
    del model.graph.value_info[:]
    ours = onnx_wire.free_input_size(src, {2: "height", 3: "width"}, output_dim=1)
    assert ours == model.SerializeToString() and ours != src
    with pytest.raises(ValueError, match="runs past the end"):
        onnx_wire.parse(src[:1000])


def test_loading_yunet_does_not_import_onnx(shared_models: Path):
    """The default detector on onnxruntime starts without the onnx package (about a second of every process)."""
    code = ("import sys; from models.face_detectors import create_face_detector; "
            "d = create_face_detector('yunet', runtime='onnxruntime'); "
            "print(d.runtime, 'onnx' in sys.modules)")
    env = {**os.environ, "POSTPROD_MODEL_DIR": str(shared_models), "POSTPROD_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["onnxruntime", "False"], out.stderr


def test_scrfd_finds_the_annotated_faces(faces_dir: Path, shared_models: Path, tmp_path: Path):
    pytest.importorskip("insightface")
    records = _run_shoot(faces_dir, tmp_path, backend="scrfd")
    tp, fp, n = _score(faces_dir, records)
    # Measured: 18/18 faces, 0 false positives at SCRFD's default threshold 0.5.
    assert tp / n >= 0.9 and fp <= 1, (tp, fp, n)


def test_face_darkened_by_one_stop_reads_one_ev_lower(faces_dir: Path, shared_models: Path):
    det = create_face_detector("yunet")
    proxy = linear_proxy(faces_dir / "2008_001009.jpg")
    h, w = proxy.rgb.shape[:2]
    before = measure_faces(proxy, detect_on_proxy(det, proxy.srgb8, 1.0, 1280), (w, h))
    assert len(before) == 2
    target = before[1]
    darker = proxy.rgb.copy()
    x0, y0 = int(target.x), int(target.y)
    x1, y1 = int(math.ceil(target.x + target.width)), int(math.ceil(target.y + target.height))
    darker[y0:y1, x0:x1] *= 0.5  # one stop less light on that face only
    dark_proxy = Proxy(rgb=darker, scale=1.0)
    after = measure_faces(dark_proxy, detect_on_proxy(det, dark_proxy.srgb8, 1.0, 1280), (w, h))
    assert len(after) == 2
    moved = min(after, key=lambda f: abs(f.x - target.x) + abs(f.y - target.y))
    other = min(after, key=lambda f: abs(f.x - before[0].x) + abs(f.y - before[0].y))
    assert moved.exposure_ev - target.exposure_ev == pytest.approx(-1.0, abs=0.3)
    assert other.exposure_ev == pytest.approx(before[0].exposure_ev, abs=0.1)


def test_blurred_face_reads_less_sharp(faces_dir: Path, shared_models: Path):
    det = create_face_detector("yunet")
    proxy = linear_proxy(faces_dir / "2008_001322.jpg")
    h, w = proxy.rgb.shape[:2]
    faces = measure_faces(proxy, detect_on_proxy(det, proxy.srgb8, 1.0, 1280), (w, h))
    soft = Proxy(rgb=cv2.GaussianBlur(proxy.rgb, (0, 0), 2.0), scale=1.0)
    for f in faces:
        box = (f.x, f.y, f.width, f.height)
        assert face_sharpness(soft.srgb8, box) < 0.5 * face_sharpness(proxy.srgb8, box)


# --- second-scale check of unsure detections (tier 2, real photos) ------------------------------
def _pipeline_detections(path: Path, ev: float = 0.0, verify_below: float = VERIFY_BELOW_SCORE):
    """Faces as the detect_faces stage finds them (1600 px proxy, 1280 px detector input),
    on the photo pushed ``ev`` stops in linear light."""
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 400_000_000)
    rgb = np.clip(decoded.rgb * np.float32(2.0**ev), 0.0, 1.0) if ev else decoded.rgb
    proxy = Proxy(rgb=rgb, scale=decoded.meta.width / decoded.rgb.shape[1])
    det = create_face_detector("yunet")
    return detect_on_proxy(det, proxy.srgb8, proxy.scale, 1280, verify_below), decoded.meta


def test_an_unsure_false_face_is_dropped(exposure_dir: Path, shared_models: Path):
    # The FiveK balcony photo: a woman seen from behind, no face in view; YuNet takes a jar on the
    # table for a face at 0.70. Shrunk to 70 % it is not found at all (no constant saw this photo).
    photo = exposure_dir / "a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG"
    unchecked, meta = _pipeline_detections(photo, verify_below=0.0)
    checked, _ = _pipeline_detections(photo)
    assert len(unchecked) == 1 and 0.7 <= unchecked[0].score < VERIFY_BELOW_SCORE
    x, y, w, h = unchecked[0].box
    assert abs((x + w / 2) / meta.width - 0.47) < 0.02 and abs((y + h / 2) / meta.height - 0.69) < 0.03  # the jar
    assert checked == []


@pytest.mark.parametrize(
    ("folder", "name", "ev"),
    [
        # Background guests, 28 px, turned away (0.82 as published).
        ("exposure", "Probably Okay! (photo4) CC BY-SA 2.0.jpg", 0.0),
        # The team photo brightened 0.4 and 0.7 EV: its faces drop to 0.78 and 0.83.
        ("exposure", "Roland Tanglao-CC BY 2.0.jpg", 0.4),
        ("exposure", "Roland Tanglao-CC BY 2.0.jpg", 0.7),
        # A face seen through a reflecting window under a strong orange light (0.76).
        ("wb", "Flickr_Rhett_Sutphin_CC_BY_2.0__.jpg", 0.0),
    ],
)
def test_unsure_real_faces_are_kept(testdata: Path, shared_models: Path, folder: str, name: str, ev: float):
    # Every detection of these photos is a real face (checked by eye); some score under 0.85.
    unchecked, _ = _pipeline_detections(testdata / folder / name, ev, verify_below=0.0)
    checked, _ = _pipeline_detections(testdata / folder / name, ev)
    assert any(0.7 <= d.score < VERIFY_BELOW_SCORE for d in unchecked)  # the check had work to do
    assert checked == unchecked


def test_second_scale_score_refuses_a_scale_of_zero(faces_dir: Path, shared_models: Path):
    det = create_face_detector("yunet")
    bgr = cv2.imread(str(faces_dir / "2008_001322.jpg"))
    face = det.detect(bgr)[0]
    assert second_scale_score(det, bgr, face) > 0.8  # a sure face is found again when smaller
    with pytest.raises(ValueError, match="scale"):
        second_scale_score(det, bgr, face, scale=0.0)



# --- the shadow pass: faces in a shadow found on a pushed copy (tier 2, real photos) ------------
#: Roland Tanglao's team photo at a snapshot's size (faces 23-27 px), with a shadow of 1.5 EV (the deep
#: end of the accuracy benchmark's 0.8-1.5) over the pale woman on the right.
SNAPSHOT_PX, SHADOW_DEPTH_EV, ROLAND_PALE_FACE = 320, 1.5, 2


def _shadowed_photo(exposure_dir: Path, tmp_path: Path) -> tuple[Proxy, tuple[float, ...]]:
    """The photo with the shadow, saved as a JPEG and decoded as the pipeline does; her box in its pixels."""
    from benchmarks.accuracy_corpus import EYE_DRAWN_FACES, load_photo, save_jpeg, shadow_mask, srgb8_to_linear
    from benchmarks.accuracy_corpus import to_srgb8 as encode_srgb8

    path = exposure_dir / "Roland Tanglao-CC BY 2.0.jpg"
    photo = load_photo(path, SNAPSHOT_PX)
    with Image.open(path) as im:
        s = photo.shape[1] / im.size[0]
    box = tuple(v * s for v in EYE_DRAWN_FACES["exposure/Roland Tanglao-CC BY 2.0"][ROLAND_PALE_FACE])
    mask = shadow_mask(photo.shape[:2], [box])
    shadowed = srgb8_to_linear(photo) * (2.0 ** (-SHADOW_DEPTH_EV * mask.astype(np.float64)))[..., None]
    jpg = tmp_path / "roland_shadow.jpg"
    save_jpeg(jpg, encode_srgb8(shadowed))
    decoded = decode_proxy(jpg, SourceKind.RASTER, 1600, 400_000_000)
    return Proxy(decoded.rgb, decoded.meta.width / decoded.rgb.shape[1]), box


def test_a_face_in_a_shadow_missed_by_the_first_pass_is_found_on_the_pushed_copy(
    exposure_dir: Path, shared_models: Path, tmp_path: Path
):
    proxy, box = _shadowed_photo(exposure_dir, tmp_path)
    det = create_face_detector("yunet")
    first = detect_on_proxy(det, proxy.srgb8, proxy.scale, 1280, shadow_pass=False)
    both = detect_on_proxy(det, proxy.srgb8, proxy.scale, 1280)
    assert len(first) == 2 and max(iou(d.box, box) for d in first) < 0.3  # her two colleagues, not her
    assert both[:2] == first  # the first pass's faces are kept as they were
    assert len(both) == 3 and iou(both[2].box, box) >= 0.5  # and she is found


def test_a_photo_without_faces_gains_none_from_the_shadow_pass(exposure_dir: Path, shared_models: Path):
    # The FiveK balcony photo, rendered 1.5 EV under: a woman seen from behind, dark furniture and
    # shadows all over (room for a face: the pass runs), no face in view.
    decoded = decode_proxy(exposure_dir / "a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG", SourceKind.RASTER,
                           1600, 400_000_000)
    proxy = Proxy(decoded.rgb, decoded.meta.width / decoded.rgb.shape[1])
    det = create_face_detector("yunet")
    bgr, _ = detector_input(proxy.srgb8, 1280)
    assert shadow_room(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert detect_on_proxy(det, proxy.srgb8, proxy.scale, 1280) == []


def test_shadow_room_needs_a_face_sized_square_in_shadow():
    luma = np.full((200, 300), 200, np.uint8)
    assert not shadow_room(luma)
    luma[50:50 + SHADOW_MIN_FACE_PX, 80:80 + SHADOW_MIN_FACE_PX] = 20  # one face-sized dark square
    assert shadow_room(luma)
    luma = np.full((200, 300), 200, np.uint8)
    luma[::4, ::4] = 0  # dark specks, none a face: the mean stays above the level
    assert not shadow_room(luma)
    with pytest.raises(ValueError, match="2-D uint8"):
        shadow_room(np.zeros((20, 20, 3), np.uint8))


def test_pushed_doubles_linear_light_per_ev_and_clips_at_white():
    grey = np.full((2, 2, 3), 118, np.uint8)  # sRGB 118 is about 0.18 linear
    one = pushed(grey, 1.0)
    assert abs(float(srgb_to_linear(one[0, 0, 0] / 255.0)) / float(srgb_to_linear(118 / 255.0)) - 2.0) < 0.03
    assert pushed(np.full((1, 1, 3), 200, np.uint8), 2.0)[0, 0, 0] == 255
