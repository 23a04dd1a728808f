"""One frame's equipment evidence on disk: its dust evidence map, its photosite candidates, its lens field.

A worker computes them from the pixels it holds (the dust map from the
proxy, the photosite scan from the RAW data while LibRaw had it) and writes
them to ``OUT/.postprod/equipment/<content hash>.npz`` (about 200 KB); the
record carries the path, and the end of the run reads the files back one at
a time to add them up per camera body (:mod:`pipeline.equipment.analysis`).
The maps are too large for a record (they would travel through Ray's object
store and the journal), and small enough to keep beside the journal so a
rerun that reuses an image's analysis reuses its evidence too.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from pipeline.imaging.dust import DustEvidence
from pipeline.imaging.lens_field import LensField
from pipeline.imaging.sensor_defects import PhotositeCandidate, PhotositeDeviation, PhotositeScan

#: Where the files go, relative to the output folder.
EVIDENCE_DIR = PurePosixPath(".postprod/equipment")
#: Bumped when the layout changes: a file of another version reads as absent.
EVIDENCE_FORMAT = 1


@dataclass(frozen=True)
class FrameEvidence:
    """What :func:`load_evidence` gives back: any part may be missing (a raster file has no scan; a file
    written before lens fields were measured has no lens field)."""

    dust: DustEvidence | None
    photosites: PhotositeScan | None
    lens: LensField | None = None


def evidence_path(content_hash: str) -> str:
    """The evidence file of a source with this SHA-256, relative to the output folder (POSIX)."""
    return str(EVIDENCE_DIR / f"{content_hash}.npz")


def evidence_bytes(dust: DustEvidence | None, photosites: PhotositeScan | None,
                   lens: LensField | None = None) -> bytes:
    """The ``.npz`` bytes of one frame's evidence (write them with an atomic write)."""
    arrays: dict[str, np.ndarray] = {"format": np.array(EVIDENCE_FORMAT, np.int16)}
    if lens is not None:
        # float32: 96 cells x 3, under 2 KB; log luminance differences of 0.01 EV matter after the median.
        arrays["lens_field"] = np.stack([lens.log_luma, lens.fine, lens.coarse]).astype(np.float32)
        arrays["lens_noise"] = np.array(lens.noise, np.float64)
    if dust is not None:
        arrays.update(
            dust_score=np.asarray(dust.score, np.float16),
            dust_depth=np.asarray(dust.depth, np.float16),
            dust_radius=np.asarray(dust.radius, np.float16),
            dust_sensitivity=np.asarray(dust.sensitivity, np.float16),
            dust_usable=np.array(dust.usable_fraction, np.float32),
        )
    if photosites is not None:
        c = photosites.candidates
        arrays.update(
            ps_size=np.array([photosites.sensor_width, photosites.sensor_height], np.int32),
            ps_truncated=np.array(photosites.truncated),
            ps_skipped=np.array(photosites.skipped or ""),
            ps_rowcol=np.array([(x.row, x.col) for x in c], np.int32).reshape(-1, 2),
            ps_bright=np.array([x.deviation is PhotositeDeviation.BRIGHT for x in c], bool),
            ps_values=np.array([(x.value, x.neighbours, x.sigmas) for x in c], np.float64).reshape(-1, 3),
        )
    # np.savez_compressed's layout (one .npy per array in a zip, read back by np.load), but at
    # deflate level 1: 3 % larger, half the time (the maps are float16 noise to zlib at any level).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


def load_evidence(path: Path) -> FrameEvidence | None:
    """Read one frame's evidence; None when the file is missing, damaged or of another format."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != EVIDENCE_FORMAT:
                return None
            dust = None
            if "dust_score" in z:
                dust = DustEvidence(
                    score=z["dust_score"],
                    depth=z["dust_depth"],
                    radius=z["dust_radius"],
                    sensitivity=z["dust_sensitivity"],
                    usable_fraction=float(z["dust_usable"]),
                )
            scan = None
            if "ps_size" in z:
                width, height = (int(v) for v in z["ps_size"])
                values = z["ps_values"]
                candidates = tuple(
                    PhotositeCandidate(
                        row=int(r), col=int(c),
                        deviation=PhotositeDeviation.BRIGHT if bright else PhotositeDeviation.DARK,
                        value=float(v[0]), neighbours=float(v[1]), sigmas=float(v[2]),
                    )
                    for (r, c), bright, v in zip(z["ps_rowcol"], z["ps_bright"], values)
                )  # fmt: skip
                skipped = str(z["ps_skipped"]) or None
                scan = PhotositeScan(width, height, candidates, bool(z["ps_truncated"]), skipped)
            lens = None
            if "lens_field" in z:
                a = z["lens_field"]
                lens = LensField(a[0], a[1], a[2], float(z["lens_noise"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return FrameEvidence(dust, scan, lens)
