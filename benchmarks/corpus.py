"""Benchmark corpora, built deterministically into a cache folder (never the repository).

Four sets:

- the real camera RAW files of the shared test data (``raw/``, 0.4-4 MP);
- 24-megapixel DNG files made from real photographs (``exposure/``, up to
  3504x2336): each is upscaled to 6000x4000 (4000x6000 for a portrait) in
  linear light and mosaicked through an RGGB filter by
  :func:`pipeline.imaging.dng.write_dng_from_linear_rgb`, so LibRaw decodes a modern
  sensor's worth of photosites with a real picture on them;
- 100-megapixel DNG files, made the same way at 11648x8736 (4:3, the
  medium-format sensors of product and real-estate work: Fujifilm GFX100,
  Hasselblad X2D), mosaicked without the float64 copies of the 24 MP path
  (:func:`build_large_dng_corpus`);
- many small JPEGs with distinct content, for the driver's memory against the
  shoot's size (only the number of images matters there, not their size).

A file is rebuilt only when it is missing or its generator changed (the
version and the source's SHA-256 are in the cache folder's ``corpus.json``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dng import write_dng_from_linear_rgb

#: Bump when the files written for the same sources change.
CORPUS_VERSION = 1
SENSOR_LONG, SENSOR_SHORT = 6000, 4000  # 24 MP, a 3:2 full-frame or APS-C sensor
MEDIUM_FORMAT = (11648, 8736)  # 102 MP, 4:3 (Fujifilm GFX100, Hasselblad X2D 100C)
RAW_SUFFIXES = {".crw", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".dng", ".kdc", ".raw", ".pef"}


def real_raw_files(data: Path) -> list[Path]:
    """The camera RAW files at the top level of ``data/raw`` (not ``unsupported/``), sorted."""
    folder = data / "raw"
    return sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in RAW_SUFFIXES)


def source_photos(data: Path, count: int) -> list[Path]:
    """The ``count`` largest photographs of ``data/exposure`` (by pixel count), largest first."""
    photos = [p for p in (data / "exposure").glob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    sized = []
    for p in photos:
        with Image.open(p) as im:
            sized.append((im.size[0] * im.size[1], p.name, p))
    sized.sort(key=lambda t: (-t[0], t[1]))
    return [p for _, _, p in sized[:count]]


def link_shoot(folder: Path, files: Iterable[Path]) -> Path:
    """Make ``folder`` a shoot of links to ``files`` (resolved), so every tool reads the same bytes from one place.

    Raises
    ------
    FileExistsError
        If ``folder`` exists already.
    """
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f.resolve())
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sensor_linear(photo: Path) -> np.ndarray:
    """A photograph as a 24 MP scene-linear float32 frame (aspect cropped to 3:2, upscaled in linear light)."""
    with Image.open(photo) as im:
        srgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    linear = srgb_to_linear(srgb)
    h, w = linear.shape[:2]
    portrait = h > w
    long_px, short_px = (h, w) if portrait else (w, h)
    # Centre crop to 3:2 so every frame is exactly 24 MP.
    if long_px * 2 > short_px * 3:
        keep = short_px * 3 // 2
        cut = (long_px - keep) // 2
        linear = linear[cut : cut + keep] if portrait else linear[:, cut : cut + keep]
    else:
        keep = long_px * 2 // 3
        cut = (short_px - keep) // 2
        linear = linear[:, cut : cut + keep] if portrait else linear[cut : cut + keep]
    size = (SENSOR_SHORT, SENSOR_LONG) if portrait else (SENSOR_LONG, SENSOR_SHORT)
    up = cv2.resize(np.ascontiguousarray(linear), size, interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0, out=up)


def build_dng_corpus(data: Path, dest: Path, count: int = 4, log=print) -> list[Path]:  # noqa: ANN001
    """Write (or reuse) ``count`` 24 MP DNG files made from the largest photos of ``data/exposure``.

    Parameters
    ----------
    data : Path
        The shared test data root.
    dest : Path
        Cache folder (created); outside the repository.
    count : int
        How many files (at most the number of photos there).

    Returns
    -------
    list of Path
        The DNG files, sorted.

    Raises
    ------
    FileNotFoundError
        If ``data/exposure`` holds no photographs.
    """
    def build(photo: Path, path: Path) -> None:
        log(f"  building {path.name} from {photo.name} ...")
        write_dng_from_linear_rgb(
            path, sensor_linear(photo), white_balance=(2.0, 1.0, 1.5), make="postprod", model="Bench 24MP",
            iso=200, exposure_time=1 / 125, f_number=5.6, focal_length=50.0,
        )

    return _cached_dngs(data, dest, count, "bench24mp", {}, build)


def _cached_dngs(data: Path, dest: Path, count: int, stem: str, key: dict, build: Callable[[Path, Path], None]
                 ) -> list[Path]:
    """``stem_NN.dng`` in ``dest`` from the ``count`` largest photos, each built by ``build(photo, path)`` unless
    ``dest/corpus.json`` says the file there came from the same photo (its SHA-256), ``key`` and CORPUS_VERSION.

    Raises
    ------
    FileNotFoundError
        If ``data/exposure`` holds no photographs.
    """
    photos = source_photos(data, count)
    if not photos:
        raise FileNotFoundError(f"no photographs in {data / 'exposure'} (set POSTPROD_TESTDATA)")
    dest.mkdir(parents=True, exist_ok=True)
    index_path = dest / "corpus.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    out = []
    for i, photo in enumerate(photos):
        name = f"{stem}_{i:02d}.dng"
        path = dest / name
        want = {"version": CORPUS_VERSION, "source": photo.name, "sha256": _sha256(photo), **key}
        if not (path.is_file() and index.get(name) == want):
            build(photo, path)
            index[name] = want
            index_path.write_text(json.dumps(index, indent=1, sort_keys=True))
        out.append(path)
    return sorted(out)


def medium_format_cfa(photo: Path, size: tuple[int, int] = MEDIUM_FORMAT, gains: tuple[float, float, float] = (2.0, 1.0, 1.5),
                      bits: int = 14) -> tuple[np.ndarray, dict]:
    """A photograph as the RGGB photosites of a ``size`` sensor, and the DNG tags that decode it.

    The synthetic camera of :func:`pipeline.imaging.dng.write_dng_from_linear_rgb`
    (sRGB primaries, the white balance ``gains``, a ``bits``-bit ADC with
    black at ``2**(bits - 5)``), built in float32 one Bayer position at a time
    so a 100 MP frame needs about 1.5 GB rather than 6.
    """
    from pipeline.imaging.dng import XYZ_TO_SRGB

    with Image.open(photo) as im:
        srgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    linear = srgb_to_linear(srgb)
    h, w = linear.shape[:2]
    out_w, out_h = size if w >= h else size[::-1]
    # Centre crop to the sensor's aspect.
    if w * out_h > h * out_w:
        keep = h * out_w // out_h
        linear = linear[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    else:
        keep = w * out_h // out_w
        linear = linear[(h - keep) // 2 : (h - keep) // 2 + keep]
    up = cv2.resize(np.ascontiguousarray(linear), (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    g = np.asarray(gains, dtype=np.float32) / min(gains)
    white, black = 2**bits - 1, 2 ** (bits - 5)
    cfa = np.empty((out_h, out_w), np.uint16)
    for dy, dx, channel in ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)):  # RGGB
        site = up[dy::2, dx::2, channel] / g[channel]
        np.clip(site, 0.0, 1.0, out=site)
        cfa[dy::2, dx::2] = np.rint(black + site * np.float32(white - black))
    del up
    neutral = 1.0 / (np.asarray(gains, dtype=np.float64) / min(gains))
    return cfa, dict(pattern="RGGB", black_level=black, white_level=white, color_matrix1=XYZ_TO_SRGB,
                     as_shot_neutral=(neutral / neutral[1]).tolist())


def build_large_dng_corpus(data: Path, dest: Path, count: int = 2, size: tuple[int, int] = MEDIUM_FORMAT,
                           log=print) -> list[Path]:  # noqa: ANN001
    """Write (or reuse) ``count`` medium-format DNGs (``size``, 102 MP by default) from the largest photos.

    Raises
    ------
    FileNotFoundError
        If ``data/exposure`` holds no photographs.
    """
    from pipeline.imaging.dng import write_dng

    mp = round(size[0] * size[1] / 1e6)

    def build(photo: Path, path: Path) -> None:
        log(f"  building {path.name} ({size[0]}x{size[1]}) from {photo.name} ...")
        cfa, tags = medium_format_cfa(photo, size)
        write_dng(path, cfa, make="postprod", model=f"Bench {mp}MP", iso=100, exposure_time=1 / 125,
                  f_number=8.0, focal_length=80.0, **tags)

    return _cached_dngs(data, dest, count, f"bench{mp}mp", {"size": list(size)}, build)


def build_small_corpus(data: Path, dest: Path, count: int, size: int = 96, log=print) -> Path:  # noqa: ANN001
    """A shoot folder of ``count`` small JPEGs with distinct content (distinct hashes, no duplicates).

    Each is a different crop of a real photograph with a different, seeded
    grain, ``size`` px on the long edge: the pipeline does all its per-image
    work, cheaply, so a 1,000-image shoot runs in minutes.

    Returns
    -------
    Path
        The folder (``dest/small_<count>``).

    Raises
    ------
    FileNotFoundError
        If ``data/exposure`` holds no photographs.
    """
    folder = dest / f"small_{count}"
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == f"{CORPUS_VERSION}:{size}":
        return folder
    photos = source_photos(data, 1)
    if not photos:
        raise FileNotFoundError(f"no photographs in {data / 'exposure'} (set POSTPROD_TESTDATA)")
    log(f"  building {count} small JPEGs in {folder} ...")
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(photos[0]) as im:
        base = np.asarray(im.convert("RGB"))
    h, w = base.shape[:2]
    crop_w, crop_h = w // 3, h // 3
    rng = np.random.default_rng(20240601)
    for i in range(count):
        x = int(rng.integers(0, w - crop_w))
        y = int(rng.integers(0, h - crop_h))
        tile = cv2.resize(base[y : y + crop_h, x : x + crop_w], (size, size * 2 // 3), interpolation=cv2.INTER_AREA)
        grain = rng.normal(0.0, 3.0, tile.shape)
        tile = np.clip(tile + grain, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(tile).save(buf, "JPEG", quality=90)
        (folder / f"IMG_{i:05d}.jpg").write_bytes(buf.getvalue())
    marker.write_text(f"{CORPUS_VERSION}:{size}")
    return folder
