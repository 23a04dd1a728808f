"""Baselines for the accuracy benchmark, and the colour arithmetic they share with the scoring.

- **RawTherapee auto**: rawtherapee-cli with auto exposure (``[Exposure] Auto=true``) and auto white
  balance (``[White Balance] Setting=autold``, "RGB grey"). RawTherapee does not write back what it
  decided (the ``.pp3`` it saves holds the input settings), so its decision is read from its output:
  the exposure correction is ``log2(median Y_auto / median Y_neutral)`` and the white-balance shift is
  the per-channel change of the mid-tones, turned into mired exactly as postprod reads a cast (the
  Planckian light with the red/blue ratio of the colour the correction makes grey, against D65).
  Neutral is the same render without the auto settings; for a rendered source (JPEG), RawTherapee's
  neutral output is the input itself (checked: mean difference 0.3 of 8-bit), so the input is used.
- **naive**: median metering to mid-grey (0.18 linear on RAW, the sRGB middle 0.214 linear on rendered
  sources) and grey-world white balance (mean of the unclipped pixels).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

RT_VERSION_HEADER = "[Version]\nAppVersion=5.9\nVersion=348\n\n"
#: Keep the full frame: by default RawTherapee trims a 4-px demosaic border, which would move faces.
RT_FULL_FRAME = "[RAW Bayer]\nBorder=0\n\n[RAW X-Trans]\nBorder=0\n"
RT_PROFILES = {
    "neutral": RT_VERSION_HEADER + RT_FULL_FRAME,
    "auto": RT_VERSION_HEADER + RT_FULL_FRAME
    + "\n[Exposure]\nAuto=true\nClip=0.02\n\n[White Balance]\nEnabled=true\nSetting=autold\n",
}
#: Debian's RawTherapee profile with its documented film-like tone curve: the rendered twins' converter.
RT_FILM_PROFILE = Path("/usr/share/rawtherapee/profiles/Standard Film Curve - ISO Low.pp3")

SRGB_MID_LINEAR = ((0.5 + 0.055) / 1.055) ** 2.4  # 0.214: the middle of the sRGB code range
RAW_MID_GREY = 0.18
D65_MIRED = 1e6 / 6504.0
_LUMA = np.array([0.2126, 0.7152, 0.0722])
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def have_rawtherapee() -> bool:
    return shutil.which("rawtherapee-cli") is not None


def rawtherapee_version() -> str:
    try:
        out = subprocess.run(["rawtherapee-cli", "-v"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.splitlines()[0].strip() if out else ""


def _profile_files(names: tuple[str, ...], folder: Path) -> list[Path]:
    paths = []
    for name in names:
        if name == "film":
            if not RT_FILM_PROFILE.is_file():
                raise FileNotFoundError(f"{RT_FILM_PROFILE} not found: apt-get install rawtherapee")
            paths.append(RT_FILM_PROFILE)
            name = "neutral"  # and the full frame on top of it
        path = folder / f"{name}.pp3"
        path.write_text(RT_PROFILES[name])
        paths.append(path)
    return paths


def rawtherapee_batch(jobs_list: list[tuple[Path, Path]], profiles: tuple[str, ...], jobs: int = 2) -> None:
    """Develop each ``(source, destination)`` pair with rawtherapee-cli and the named profiles (stacked in
    order) to JPEG; ``jobs`` processes in parallel, each given many files (RawTherapee's start-up, about a
    second, is paid once per process, not once per file).

    Raises
    ------
    RuntimeError
        When rawtherapee-cli fails or leaves a file unwritten (the message names the file).
    """
    if not jobs_list:
        return
    chunks = [jobs_list[k::max(1, jobs)] for k in range(max(1, jobs))]

    def run(chunk: list[tuple[Path, Path]]) -> None:
        if not chunk:
            return
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            args: list[str] = []
            for p in _profile_files(profiles, t):
                args += ["-p", str(p)]
            (t / "in").mkdir()
            (t / "out").mkdir()
            inputs = []
            for n, (src, _) in enumerate(chunk):
                link = t / "in" / f"{n:06d}{src.suffix.lower()}"
                os.symlink(src.resolve(), link)
                inputs.append(str(link))
            # Batches of 200 keep the command line short.
            for k in range(0, len(inputs), 200):
                cmd = ["rawtherapee-cli", "-q", "-Y", "-a", *args, "-o", str(t / "out"), "-j98", "-js3", "-c", *inputs[k:k + 200]]
                got = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
                if got.returncode != 0:
                    raise RuntimeError(f"rawtherapee-cli failed (exit {got.returncode}): {got.stderr.strip()[-300:]}")
            for n, (src, dest) in enumerate(chunk):
                made = t / "out" / f"{n:06d}.jpg"
                if not made.is_file():
                    raise RuntimeError(f"rawtherapee-cli wrote nothing for {src}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp_dest = dest.with_name(f".{dest.name}.tmp")
                shutil.move(str(made), tmp_dest)
                os.replace(tmp_dest, dest)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        list(pool.map(run, chunks))


def rawtherapee_render(src: Path, out: Path, profiles: tuple[str, ...]) -> None:
    """Develop one file (see :func:`rawtherapee_batch`)."""
    rawtherapee_batch([(src, out)], profiles, 1)


def rawtherapee_cached(sources: list[Path], cache: Path, profile: str, jobs: int = 2) -> dict[Path, Path]:
    """RawTherapee's render of each source with ``profile``, made once: keyed by the file's bytes, the
    profile and RawTherapee's version."""
    version = rawtherapee_version()
    out: dict[Path, Path] = {}
    todo = []
    for src in sources:
        h = hashlib.sha256(RT_PROFILES.get(profile, profile).encode() + b"\0" + version.encode() + b"\0")
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        dest = cache / "rawtherapee" / profile / f"{h.hexdigest()[:24]}.jpg"
        out[src] = dest
        if not dest.is_file():
            todo.append((src, dest))
    rawtherapee_batch(todo, (profile,), jobs)
    return out


# --- reading images -------------------------------------------------------------------------------


def read_linear_scaled(path: Path, long_edge: int) -> tuple[np.ndarray, float]:
    """:func:`read_linear` at most ``long_edge`` px, and the scale from the file's pixels to the array's.

    A RAW file is decoded at half size (LibRaw's 2x2 binning, 4x faster) when that still gives at
    least 3/4 of ``long_edge``.
    """
    if path.suffix.lower() in RAW_SUFFIXES:
        import rawpy

        with rawpy.imread(str(path)) as raw:
            full_w = raw.sizes.width if raw.sizes.flip in (0, 3) else raw.sizes.height
            half = max(raw.sizes.width, raw.sizes.height) / 2 >= 0.75 * long_edge
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, adjust_maximum_thr=0.0, output_bps=16,
                                  gamma=(1, 1), output_color=rawpy.ColorSpace.sRGB, half_size=half)
        full = rgb.astype(np.float64) / 65535.0
        scale = full.shape[1] / full_w
    else:
        full, scale = read_linear(path), 1.0
    if max(full.shape[:2]) <= long_edge:
        return full, scale
    import cv2

    s = long_edge / max(full.shape[:2])
    small = cv2.resize(full, (round(full.shape[1] * s), round(full.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return small, scale * small.shape[1] / full.shape[1]


RAW_SUFFIXES = (".dng", ".crw", ".kdc", ".cr2", ".nef", ".arw")


def read_linear(path: Path, long_edge: int | None = None) -> np.ndarray:
    """Linear sRGB of a file: LibRaw (camera white balance, no auto-brightening) for RAWs, the sRGB curve
    for rendered files; float64 in [0, 1], at most ``long_edge`` px when given."""
    if path.suffix.lower() in RAW_SUFFIXES:
        import rawpy

        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, adjust_maximum_thr=0.0, output_bps=16,
                                  gamma=(1, 1), output_color=rawpy.ColorSpace.sRGB, half_size=long_edge is not None
                                  and max(raw.sizes.width, raw.sizes.height) >= 2 * long_edge)
        lin = rgb.astype(np.float64) / 65535.0
    else:
        with Image.open(path) as im:
            from PIL import ImageOps

            im = ImageOps.exif_transpose(im).convert("RGB")
            arr = np.asarray(im).astype(np.float64) / 255.0
        lin = np.where(arr <= 0.04045, arr / 12.92, ((arr + 0.055) / 1.055) ** 2.4)
    if long_edge and max(lin.shape[:2]) > long_edge:
        import cv2

        s = long_edge / max(lin.shape[:2])
        lin = cv2.resize(lin, (round(lin.shape[1] * s), round(lin.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return lin


def median_luminance(lin: np.ndarray) -> float:
    return float(np.median(lin @ _LUMA))


# --- colour ------------------------------------------------------------------------------------------


def mccamy_cct(rgb: np.ndarray) -> float | None:
    """McCamy's (1992) correlated colour temperature of a linear sRGB colour; None outside 1667-25000 K."""
    xyz = _SRGB_TO_XYZ @ np.asarray(rgb, dtype=np.float64)
    s = float(xyz.sum())
    if s <= 0:
        return None
    x, y = xyz[0] / s, xyz[1] / s
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return float(cct) if 1667.0 <= cct <= 25000.0 else None


def cast_mired(rgb: np.ndarray) -> float | None:
    """How warm a neutral that reads ``rgb`` is, in mired against D65 (+ = warm); postprod's convention and
    conversion (:func:`pipeline.imaging.white_balance.cast_mired`: the Planckian light of the same red/blue
    ratio, read past 25 000 K where McCamy's formula stops). None for a colour without red or blue."""
    from pipeline.imaging.white_balance import cast_mired as locus_cast_mired

    rgb = np.asarray(rgb, dtype=np.float64)
    if not (np.all(np.isfinite(rgb)) and rgb[0] > 0 and rgb[2] > 0):
        return None
    return locus_cast_mired(rgb)


def shift_of_gains(gains: np.ndarray) -> float | None:
    """The white-balance shift (mired, + = warmer) that linear channel ``gains`` make: they turn the colour
    ``1 / gains`` grey, so the shift is minus that colour's cast."""
    cast = cast_mired(1.0 / np.asarray(gains, dtype=np.float64))
    return None if cast is None else -cast


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of linear sRGB colours (..., 3)."""
    xyz = np.asarray(rgb, dtype=np.float64) @ _SRGB_TO_XYZ.T
    t = xyz / _SRGB_TO_XYZ.sum(axis=1)
    f = np.where(t > (6 / 29) ** 3, np.cbrt(np.maximum(t, 0)), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def face_colour(lin: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """Median linear RGB of a face box's centre half (where postprod meters a face)."""
    x, y, w, h = box
    x0, y0 = max(0, int(x + w / 4)), max(0, int(y + h / 4))
    x1, y1 = min(lin.shape[1], int(math.ceil(x + 3 * w / 4))), min(lin.shape[0], int(math.ceil(y + 3 * h / 4)))
    if x1 <= x0 or y1 <= y0:
        return None
    return np.median(lin[y0:y1, x0:x1].reshape(-1, 3), axis=0)


def skin_hue_chroma(rgb: np.ndarray) -> tuple[float, float]:
    """CIELAB hue angle (degrees, 0-360) and chroma of a linear sRGB colour."""
    _, a, b = lab(np.clip(rgb, 0.0, None))
    return float(math.degrees(math.atan2(b, a)) % 360.0), float(math.hypot(a, b))


# --- what a converter decided, read from its output --------------------------------------------------


def _usable(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    lo, hi = 2.0**-9, 0.9
    return (before.min(-1) > lo) & (before.max(-1) < hi) & (after.min(-1) > lo) & (after.max(-1) < hi)


def exposure_change_ev(before: np.ndarray, after: np.ndarray) -> float:
    """``log2(median Y_after / median Y_before)``: the exposure correction a converter applied."""
    return math.log2(max(median_luminance(after), 1e-9) / max(median_luminance(before), 1e-9))


def wb_change(before: np.ndarray, after: np.ndarray) -> tuple[float | None, float | None]:
    """The white-balance change between two renders of one image: (mired shift, + = warmer; log2 R/B change).

    The per-channel gain is the median per-pixel ratio over pixels neither black nor clipped in
    either render, relative to green, so a common tone change cancels.
    """
    if before.shape != after.shape:
        import cv2

        after = cv2.resize(after, (before.shape[1], before.shape[0]), interpolation=cv2.INTER_AREA)
    ok = _usable(before, after)
    if ok.sum() < 100:
        return None, None
    logs = np.log2(after[ok] / before[ok])
    med = np.median(logs, axis=0)
    gains = 2.0 ** (med - med[1])
    rb = float(np.median(logs[:, 0] - logs[:, 2]))
    return shift_of_gains(gains), rb


# --- the naive baseline -------------------------------------------------------------------------------


def naive_exposure_ev(lin: np.ndarray, rendered: bool) -> float:
    """Median metering: the correction that puts the median luminance on mid-grey."""
    target = SRGB_MID_LINEAR if rendered else RAW_MID_GREY
    return math.log2(target / max(median_luminance(lin), 1e-9))


def grey_world_gains(lin: np.ndarray) -> np.ndarray | None:
    """Grey-world white balance: gains that make the mean of the unclipped, non-black pixels grey."""
    ok = (lin.max(-1) < 0.98) & (lin.min(-1) > 2.0**-10)
    if ok.sum() < 100:
        return None
    mean = lin[ok].mean(axis=0)
    return mean[1] / mean


def naive_wb_shift(lin: np.ndarray) -> tuple[float | None, float | None]:
    gains = grey_world_gains(lin)
    if gains is None:
        return None, None
    return shift_of_gains(gains), float(np.log2(gains[0] / gains[2]))
