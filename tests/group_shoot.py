"""The review tests' shoot of group photos, with one face in a known shadow.

A face lift is for a face in a shadow, not for a face darker than its
neighbours by nature (skin, angle to the light). 2008_001009's two faces are
lit alike, and the rule no longer lifts either; the review tests need a lift
to review, so it goes into their shoot with a 0.6 EV shadow over the face of
the girl behind (already a little further from the flash), made the way the
accuracy benchmark makes its shadow twins
(:func:`benchmarks.accuracy_corpus.shadow_mask`: a soft ellipse over the
head, multiplied into linear light). The lift then has a real reason that
does not hang on how the faces rule is tuned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.accuracy_corpus import pascal_voc_boxes, save_jpeg, shadow_mask, srgb8_to_linear, to_srgb8

#: The photo given a shadow, and the face shadowed (boxes.xml order: 0 the girl behind, 1 the woman in front).
SHADOWED = "2008_001009.jpg"
SHADOWED_FACE = 0
SHADOW_EV = 0.6


def shadowed_photo(src: Path, dest: Path, box: tuple[float, float, float, float], depth_ev: float) -> None:
    """Write ``src`` (a JPEG) to ``dest`` with a shadow ``depth_ev`` deep over the face ``box``."""
    srgb8 = np.asarray(Image.open(src).convert("RGB"))
    factor = 2.0 ** (-depth_ev * shadow_mask(srgb8.shape[:2], [box]))[..., None]
    save_jpeg(dest, to_srgb8(srgb8_to_linear(srgb8) * factor))


def copy_group_photos(faces_dir: Path, shoot: Path) -> None:
    """The shared group photos into ``shoot``, :data:`SHADOWED` with a :data:`SHADOW_EV` shadow on one face."""
    for p in sorted(faces_dir.glob("*.jpg")):
        shutil.copy(p, shoot)
    box = pascal_voc_boxes(faces_dir / "boxes.xml")[SHADOWED][SHADOWED_FACE]
    shadowed_photo(faces_dir / SHADOWED, shoot / SHADOWED, box, SHADOW_EV)
