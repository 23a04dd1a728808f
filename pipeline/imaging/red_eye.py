"""Red eye: a flash close to the lens lit the retina through a wide pupil, and the pupil came out red.

Found on the analysis proxy around each detected face's eye landmarks (:func:`find_red_eyes`), corrected by the
renderer in every rendition (:func:`pipeline.imaging.render.apply_red_eyes`): in a soft disc over the pupil, each
pixel loses its red in proportion to how far its red stands above its green and blue, down to their level, so the
pupil comes out as dark as it is and the catch light, the iris and the skin around (not red enough) stay.

The thresholds are set from the colours involved, in linear light; :data:`RED_RATIO` (from 3) and
:data:`MIN_PUPIL_PIXELS` were raised, and :data:`LIT_OF_SKIN` added, after false finds on the red-eye benchmark's
PASCAL photos and on an OCHuman photo (``benchmarks/RED_EYE.md`` says which of its figures are held out):

- a red pupil is the retina's blood seen through a dark opening: its green and blue are near black, its red many
  times theirs (:data:`RED_RATIO`: 6 in linear light is 2.3 in sRGB values, (200, 87, 87): red, where pink is
  (200, 120, 110), 3 in linear light; a flash's red eye reads 10 to 30), and twice the skin's around it at least
  (:data:`SKIN_FACTOR`: in a warm light the skin's red rises too); skin, even ruddy, holds a red of 1.3 to 2.5
  times its green in linear light under white light, the pink corner of an eye and a reddened lid 2 to 4; and its
  red is lit, a fifth of the skin's at least (:data:`LIT_OF_SKIN`: the flash comes back off the retina; a dim red
  eye, (150, 20, 20), on skin the flash lit bright, (240, 190, 170), is 0.35 of it in linear light, where the
  shadowed fold of a squinting, ruddy face, a dark brown (75, 21, 0) on (200, 130, 110), is 0.14);
- a pupil is a small round opening centred on the eye: its radius is 3 to 20 % of the distance between the eyes
  (an iris is about 10 %; a pupil opened wide in the dark reaches most of it) (:data:`PUPIL_RADIUS`), and it lies
  within a fifth of that distance of the eye's landmark (:data:`SEARCH`);
- a face whose eyes lie under :data:`MIN_EYE_DISTANCE` proxy pixels apart has pupils of a pixel or less there:
  not judged.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: A pupil pixel is red where its linear red is this many times the larger of its green and blue.
RED_RATIO = 6.0
#: ... and this many times that of the skin around the eye (the median of the region searched, mostly skin).
SKIN_FACTOR = 2.0
#: ... and its red (the brighter quarter of the blob's) at least this share of the skin's.
LIT_OF_SKIN = 0.2
#: The red blob is looked for within this share of the eye distance around the eye's landmark ...
SEARCH = 0.2
#: ... and its radius must lie in this range of shares of the eye distance.
PUPIL_RADIUS = (0.03, 0.2)
#: Eyes closer than this on the proxy (pixels) are not judged, nor red specks under this many pixels (a JPEG's
#: colour, stored at half resolution, smears a red lid's edge over a pixel or two).
MIN_EYE_DISTANCE = 12.0
MIN_PUPIL_PIXELS = 7
#: The corrected disc reaches this far beyond the red blob's radius (the blob's edge is half red).
MARGIN = 1.5


def redness(rgb: np.ndarray) -> np.ndarray:
    """How far a pixel's red stands above its green and blue: red / max(green, blue), in linear light."""
    rgb = np.asarray(rgb, dtype=np.float32)
    other = np.maximum(rgb[..., 1], rgb[..., 2])
    return rgb[..., 0] / np.maximum(other, np.float32(1e-4))


def find_red_eyes(rgb_linear: np.ndarray, landmarks: list[float] | tuple[float, ...]) -> list[tuple[float, float, float]]:
    """The red pupils of one face: ``(x, y, radius)`` in ``rgb_linear``'s pixels, one per red eye (none, one or two);
    the radius is the red blob's (the disc of its area) times :data:`MARGIN`, over its half-red rim.

    Parameters
    ----------
    rgb_linear : ndarray, (H, W, 3), float32
        The analysis proxy, linear light.
    landmarks : sequence of float
        The face's ten landmark values in ``rgb_linear``'s pixels (the two eyes first).
    """
    if len(landmarks) < 4:
        return []
    eyes = ((float(landmarks[0]), float(landmarks[1])), (float(landmarks[2]), float(landmarks[3])))
    apart = math.dist(*eyes)
    if apart < MIN_EYE_DISTANCE:
        return []
    h, w = rgb_linear.shape[:2]
    reach = SEARCH * apart + PUPIL_RADIUS[1] * apart
    found = []
    for ex, ey in eyes:
        x0, y0 = max(0, int(math.floor(ex - reach))), max(0, int(math.floor(ey - reach)))
        x1, y1 = min(w, int(math.ceil(ex + reach)) + 1), min(h, int(math.ceil(ey + reach)) + 1)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        patch = rgb_linear[y0:y1, x0:x1]
        ratio = redness(patch)
        # Redder than the face's own skin around the eye by SKIN_FACTOR, whatever the light's colour (a tungsten
        # or flash-warmed face's skin reads redder too).
        floor = max(RED_RATIO, SKIN_FACTOR * float(np.median(ratio)))
        red = ratio >= floor
        # Its red lit: the flash comes back off the retina (a shadowed fold of a ruddy face is dark in every channel).
        lit = LIT_OF_SKIN * float(np.median(patch[..., 0]))
        count, labels, stats, centres = cv2.connectedComponentsWithStats(red.astype(np.uint8), connectivity=8)
        best = None
        for k in range(1, count):
            cx, cy = centres[k][0] + x0, centres[k][1] + y0
            area = float(stats[k, cv2.CC_STAT_AREA])
            if area < MIN_PUPIL_PIXELS:
                continue
            radius = math.sqrt(area / math.pi)
            off = math.hypot(cx - ex, cy - ey)
            if off > SEARCH * apart or not PUPIL_RADIUS[0] * apart <= radius <= PUPIL_RADIUS[1] * apart:
                continue
            if float(np.percentile(patch[..., 0][labels == k], 75)) < lit:  # the blob's brighter quarter
                continue
            # Round: the blob fills most of the disc of its size around its centre, and reaches no further.
            bw, bh = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
            if max(bw, bh) > 2.5 * radius + 2 or min(bw, bh) < 0.8 * radius:
                continue
            if best is None or area > best[2]:
                best = (float(cx), float(cy), area, radius)
        if best is not None:
            found.append((best[0], best[1], MARGIN * best[3]))
    return found
