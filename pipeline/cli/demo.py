"""Build the demo shoot: real photographs as real DNG files, and the usual mess.

The photos are scikit-image's bundled samples (they ship inside the wheel, so
nothing is downloaded): taken back to the scene light a camera-like development
made them from (:func:`~pipeline.imaging.measure.metering.undevelop`, so a frame
exposed as the photo was is delivered looking like it), upscaled to a realistic
size, and photographed by the synthetic camera of :mod:`pipeline.imaging.dng` with the white
balance, exposure and shooting data varying from frame to frame as they do in
a real shoot. Beside them lie what a real upload also holds: the camera's
JPEG of one frame (skipped as its RAW+JPEG pair, unless ``--raw-jpeg-pairs both``),
a duplicate, a sidecar, a hidden file and a truncated file, so a run over the demo
shows every kind of manifest row and of skipped file. Where the shared test data's
group photos are given, one of them is photographed too, with a soft shade over
three of its faces: the frame with faces to brighten (:data:`SHADED_FACES`).

The build is deterministic (same bytes on every run, no clock) and
idempotent: a file already holding the right bytes is left alone.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dng import dng_bytes_from_linear_rgb
from pipeline.imaging.measure.metering import undevelop
from pipeline.imaging.shade import shadow_mask
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.ingest import RASTER_EXTENSIONS, RAW_EXTENSIONS

DEMO_MAKE = "postprod demo"
DEMO_MODEL = "Synthetic DNG"
DEMO_LONG_EDGE = 2400
SHOOT_START = datetime(2024, 5, 18, 14, 30, 0)
# Linear value of each 8-bit sRGB code: exact and the same on every machine.
_SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0).astype(np.float64)


@dataclass(frozen=True)
class DemoFrame:
    """One frame of the demo shoot and how the 'camera' took it."""

    name: str
    photo: str  # scikit-image sample
    white_balance: tuple[float, float, float]  # gains the camera applies (R, G, B)
    exposure_ev: float  # error against the photo's own exposure
    iso: int
    exposure_time: float
    f_number: float
    focal_length: float
    orientation: int = 1
    portrait_crop: bool = False  # crop to 4:5 portrait before shooting


FRAMES = (
    # Shot in portrait with the camera turned: stored landscape, orientation 6.
    DemoFrame("IMG_0001", "astronaut", (2.05, 1.0, 1.48), 0.0, 200, 1 / 160, 4.0, 85.0, 6, True),
    DemoFrame("IMG_0002", "coffee", (1.42, 1.0, 2.38), 0.0, 800, 1 / 60, 2.8, 50.0),  # tungsten
    DemoFrame("IMG_0003", "chelsea", (2.31, 1.0, 1.29), -1.5, 400, 1 / 500, 5.6, 105.0),  # shade, 1.5 EV under
    DemoFrame("IMG_0004", "motorcycle", (2.12, 1.0, 1.41), 1.0, 100, 1 / 60, 8.0, 24.0),  # flash, 1 EV over
    DemoFrame("IMG_0005", "rocket", (2.0, 1.0, 1.52), 0.3, 100, 1 / 250, 8.0, 35.0),  # daylight
)
JPEG_OF = "IMG_0002"  # the camera's JPEG beside its RAW (RAW+JPEG shooting)
DUPLICATE_OF = "IMG_0005"
TRUNCATED_FROM = "IMG_0004"
TRUNCATED_NAME = "IMG_0099_truncated.dng"
CAMERA_RAWS = "camera_raws"
GROUP_PHOTOS = "group_photos"
#: The frame with faces to brighten: a family of seven in a living room (the shared group photo
#: :data:`SHADED_PHOTO`, PASCAL VOC 2007_007763) photographed by the demo camera with a soft shade over three faces
#: (:func:`pipeline.imaging.shade.shadow_mask`, the accuracy benchmark's shadow). Its photo is not copied into
#: :data:`GROUP_PHOTOS` as well (a copy an older demo left there is removed): the frame is that picture.
SHADED_NAME = "IMG_0006"
SHADED_PHOTO = "2007_007763.jpg"
#: Face boxes of :data:`SHADED_PHOTO` as people drew them (``boxes.xml``: left, top, width, height, px) -> the shade's
#: depth over each (EV, in the light the camera saw).
SHADED_FACES = {(94, 198, 37, 37): 1.2, (178, 214, 37, 37): 1.0, (294, 86, 37, 37): 1.5}


def build_demo_shoot(
    dest: Path | str, shared_raw: Path | str | None = None, shared_faces: Path | str | None = None
) -> list[Path]:
    """Write (or bring up to date) the demo shoot folder.

    Parameters
    ----------
    dest : Path or str
        The shoot folder; created if missing. Files already there with the
        right content are not rewritten; other files are left alone.
    shared_raw : Path or str, optional
        A folder of real camera RAW files (the shared test data's ``raw/``).
        When it exists, its top-level image files are linked (copied where
        links fail) into ``dest/camera_raws/``.
    shared_faces : Path or str, optional
        A folder of real group photos (the shared test data's
        ``faces/pascal_voc/``), copied into ``dest/group_photos/`` when it
        exists; one of them (:data:`SHADED_PHOTO`) is photographed instead, with a
        shade over three faces (:data:`SHADED_NAME`): the faces to brighten.

    Returns
    -------
    list of Path
        Every file of the demo shoot, sorted: the DNG frames, the JPEG, the
        duplicate, the sidecar, ``.DS_Store``, the truncated DNG, the
        camera RAWs, the group photos and the shaded frame.

    Raises
    ------
    OSError
        If ``dest`` cannot be created or written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    dng_of: dict[str, bytes] = {}
    for i, frame in enumerate(FRAMES):
        srgb8 = _frame_srgb8(frame)
        data = dng_bytes_from_linear_rgb(
            undevelop(_SRGB8_TO_LINEAR[srgb8]) * 2.0**frame.exposure_ev,
            white_balance=frame.white_balance,
            make=DEMO_MAKE,
            model=DEMO_MODEL,
            orientation=frame.orientation,
            captured_at=_captured_at(i),
            iso=frame.iso,
            exposure_time=frame.exposure_time,
            f_number=frame.f_number,
            focal_length=frame.focal_length,
        )
        dng_of[frame.name] = data
        written.append(_put(dest / f"{frame.name}.dng", data))
        if frame.name == JPEG_OF:
            written.append(_put(dest / f"{frame.name}.JPG", _camera_jpeg(frame, i, srgb8)))
    # "_copy" sorts after the original, which ingest then keeps as the first seen.
    written.append(_put(dest / f"{DUPLICATE_OF}_copy.dng", dng_of[DUPLICATE_OF]))
    truncated = dng_of[TRUNCATED_FROM]
    # Half the file: the header parses, the pixel data ends mid-image.
    written.append(_put(dest / TRUNCATED_NAME, truncated[: len(truncated) // 2]))
    written.append(_put(dest / f"{FRAMES[0].name}.xmp", _sidecar_xmp(FRAMES[0].name)))
    written.append(_put(dest / ".DS_Store", _DS_STORE))
    if shared_raw is not None and Path(shared_raw).is_dir():
        written += _copy_shared_images(Path(shared_raw), dest / CAMERA_RAWS)
    if shared_faces is not None and Path(shared_faces).is_dir():
        shaded = Path(shared_faces) / SHADED_PHOTO
        if shaded.is_file():
            written.append(_put(dest / f"{SHADED_NAME}.dng", _shaded_group_dng(shaded, len(FRAMES))))
            (dest / GROUP_PHOTOS / SHADED_PHOTO).unlink(missing_ok=True)
        written += _copy_shared_images(Path(shared_faces), dest / GROUP_PHOTOS, leave_out={SHADED_PHOTO})
    return sorted(written)


def _shaded_group_dng(photo: Path, index: int) -> bytes:
    """:data:`SHADED_PHOTO` as the demo camera's DNG, a shade of its depth over each of :data:`SHADED_FACES`."""
    with Image.open(photo) as im:
        rgb, scale = _at_demo_size(np.asarray(im.convert("RGB")))
    log_factor = np.zeros(rgb.shape[:2], np.float64)
    for box, depth in SHADED_FACES.items():  # each face its own shade, as the benchmark's twins
        log_factor -= depth * shadow_mask(rgb.shape[:2], [tuple(v * scale for v in box)])
    return dng_bytes_from_linear_rgb(
        undevelop(_SRGB8_TO_LINEAR[rgb]) * (2.0**log_factor)[..., None],
        white_balance=(2.0, 1.0, 1.5),
        make=DEMO_MAKE,
        model=DEMO_MODEL,
        captured_at=_captured_at(index),
        iso=800,
        exposure_time=1 / 60,
        f_number=4.0,
        focal_length=28.0,
    )


def _captured_at(index: int) -> datetime:
    # A photographer's pace: frames 40 s apart.
    return SHOOT_START + timedelta(seconds=40 * index)


def _sample_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def _frame_srgb8(frame: DemoFrame) -> np.ndarray:
    """The frame's 8-bit sRGB picture at demo size, in stored orientation.

    Upscaled in 8-bit sRGB: the samples are 8-bit already, and OpenCV's
    8-bit resize is fixed-point, hence the same bytes on every CPU.
    """
    rgb = np.ascontiguousarray(_sample_photo(frame.photo)[..., :3])
    if frame.portrait_crop:
        h, w = rgb.shape[:2]
        crop_w = min(w, (h * 4) // 5)
        left = (w - crop_w) // 2
        rgb = np.ascontiguousarray(rgb[:, left : left + crop_w])
    rgb, _ = _at_demo_size(rgb)
    if frame.orientation == 6:
        # The sensor was turned 90 degrees clockwise; a viewer turns it back.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=1))
    elif frame.orientation != 1:
        raise ValueError(f"demo frames are stored with orientation 1 or 6, not {frame.orientation}")
    return rgb


def _at_demo_size(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """An 8-bit picture upscaled to :data:`DEMO_LONG_EDGE` (even sides: whole 2x2 CFA blocks), and the scale."""
    h, w = rgb.shape[:2]
    scale = DEMO_LONG_EDGE / max(h, w)
    size = (2 * round(w * scale / 2), 2 * round(h * scale / 2))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), scale


def _camera_jpeg(frame: DemoFrame, index: int, srgb8: np.ndarray) -> bytes:
    """The camera's own JPEG of a frame, with its EXIF."""
    # Re-expose each 8-bit code once (256 values), then look the picture up.
    lin = np.clip(_SRGB8_TO_LINEAR * 2.0**frame.exposure_ev, 0.0, 1.0)
    enc = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    im = Image.fromarray(np.rint(enc * 255).astype(np.uint8)[srgb8])
    exif = Image.Exif()
    stamp = _captured_at(index).strftime("%Y:%m:%d %H:%M:%S")
    h, w = srgb8.shape[:2]
    # The tags a camera writes (exiftool -validate lists them as required).
    exif[0x010F] = DEMO_MAKE
    exif[0x0110] = DEMO_MODEL
    exif[0x0112] = frame.orientation
    exif[0x011A] = IFDRational(300, 1)
    exif[0x011B] = IFDRational(300, 1)
    exif[0x0128] = 2  # inch
    exif[0x0132] = stamp
    exif[0x0213] = 1  # YCbCr centred
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = _exif_rational(frame.exposure_time)
    sub[0x829D] = _exif_rational(frame.f_number)
    sub[0x8827] = frame.iso
    sub[0x9000] = b"0231"
    sub[0x9003] = stamp
    sub[0x920A] = _exif_rational(frame.focal_length)
    sub[0xA000] = b"0100"
    sub[0xA001] = 1  # sRGB
    sub[0xA002] = w
    sub[0xA003] = h
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def _exif_rational(x: float) -> IFDRational:
    f = Fraction(x).limit_denominator(100_000)
    return IFDRational(f.numerator, f.denominator)


def _sidecar_xmp(name: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n'
        f'    xmp:Rating="4" crs:RawFileName="{name}.dng" crs:Exposure2012="+0.30"/>\n'
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    ).encode("utf-8")


# What macOS Finder leaves behind: the Bud1 magic, then its B-tree (zeros here).
_DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(6148 - 8)


def _put(path: Path, data: bytes) -> Path:
    """Write ``data`` unless ``path`` already holds exactly it."""
    if path.is_file() and not path.is_symlink() and path.stat().st_size == len(data):
        if hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
            return path
    if path.is_symlink():
        path.unlink()
    return write_bytes_atomic(path, data)


def _copy_shared_images(shared_raw: Path, folder: Path, leave_out: frozenset[str] | set[str] = frozenset()
                        ) -> list[Path]:
    """Copy the top-level image files of ``shared_raw`` into ``folder`` (RAW or raster) but those ``leave_out`` names.

    Copies, not links: an upload is files, and ``postprod process`` skips links
    that leave the shoot folder unless asked (``--follow-external-symlinks``).
    A link left by an older demo is replaced by its file.
    """
    folder.mkdir(exist_ok=True)
    image_ext = RAW_EXTENSIONS | RASTER_EXTENSIONS
    placed = []
    for src in sorted(shared_raw.iterdir()):
        if not src.is_file() or src.suffix.lower().lstrip(".") not in image_ext or src.name in leave_out:
            continue  # licence texts, the unsupported/ folder
        target = src.resolve()
        dest = folder / src.name
        if dest.is_symlink():
            dest.unlink()
        elif dest.is_file():
            if dest.stat().st_size == target.stat().st_size and _sha256(dest) == _sha256(target):
                placed.append(dest)
                continue
            dest.unlink()
        shutil.copyfile(target, dest)
        placed.append(dest)
    return placed


def _sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.digest()
