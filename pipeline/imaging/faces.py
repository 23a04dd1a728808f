"""Find the faces of each image and measure their exposure and sharpness.

Detection runs on the analysis proxy (as Immich detects on its preview, not
the original), sized down for the detector, and every box and landmark is
mapped to full-resolution pixels of the oriented image, where the render step
and downstream tools work. Each face gets its trade measures on the proxy's
linear pixels: its exposure in EV against the target, a sharpness figure
comparable across face sizes, the colour of its skin (which the white balance
must keep), the share of its skin clipped at white, its light against its
surroundings' and the light on its skin under the eyes. Faces too small to retouch are kept and
flagged rather than dropped, so a count of people in a shot stays right.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from models.face_detectors import Detection
from pipeline.imaging.color import Proxy, brightest_channel, luminance
from pipeline.imaging.measure.exposure import HIGHLIGHT_LEVEL
from pipeline.imaging.measure.focus import laplacian_variance
from pipeline.imaging.measure.metering import FACE_LOG2, ev_of, scene_light
from pipeline.imaging.red_eye import find_red_eyes
from pipeline.kernel.records import Face

# Darkest luminance the EV reading resolves (-16 EV against 1.0): a black
# face reads as very underexposed rather than as minus infinity.
_MIN_LUMINANCE = 2.0**-16
SHARPNESS_WIDTH = 128


def _crop_bounds(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Integer ``(x0, y0, x1, y1)`` of ``box`` inside an image of ``shape``; None if nothing is left."""
    h, w = shape[:2]
    x, y, bw, bh = box
    x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
    x1, y1 = min(w, int(math.ceil(x + bw))), min(h, int(math.ceil(y + bh)))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _face_centre(rgb_linear: np.ndarray, box: tuple[float, float, float, float],
                 centre_fraction: float) -> np.ndarray | None:
    """The centre ``centre_fraction`` of a face box (a view, no copy), or None outside the image.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    if not 0 < centre_fraction <= 1:
        raise ValueError(f"centre_fraction must be in (0, 1], got {centre_fraction}")
    x, y, w, h = box
    cw, ch = max(w * centre_fraction, 1.0), max(h * centre_fraction, 1.0)
    bounds = _crop_bounds((x + (w - cw) / 2, y + (h - ch) / 2, cw, ch), rgb_linear.shape)
    if bounds is None:
        return None
    x0, y0, x1, y1 = bounds
    return rgb_linear[y0:y1, x0:x1]


def face_centre_luminance(
    rgb_linear: np.ndarray, box: tuple[float, float, float, float], centre_fraction: float = 0.5
) -> float | None:
    """Median linear luminance of the centre of a face box, or None when the box lies outside the image.

    Only the centre of the box is measured (``centre_fraction`` of its width and
    height): the box's edges hold hair, ears and background, which would pull
    the reading toward the scene instead of the skin. The median keeps eyes,
    brows and specular highlights from moving it.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    centre = _face_centre(rgb_linear, box, centre_fraction)
    return None if centre is None else float(np.median(luminance(centre)))


def face_exposure_ev(
    rgb_linear: np.ndarray,
    box: tuple[float, float, float, float],
    rendered: bool = False,
    centre_fraction: float = 0.5,
) -> float | None:
    """Exposure of a face in EV of scene light against a well-exposed face.

    ``log2(scene light of the face's centre / FACE_REFERENCE)``: the median
    luminance of the centre (:func:`face_centre_luminance`), taken back through
    the camera-like tone curve for a rendered source
    (:func:`~pipeline.imaging.measure.metering.scene_light`), against the
    centre of a face in a well-exposed photograph
    (:data:`~pipeline.imaging.measure.metering.FACE_LOG2`). On the same scale as
    the whole image's meter: 0 is a face exposed like the typical published
    portrait, -1 a stop darker. A black face reads as very under-exposed
    instead of failing.

    Parameters
    ----------
    rgb_linear : ndarray, float32, (H, W, 3)
        The proxy's linear RGB (display-linear for a rendered source).
    box : tuple of float
        ``(x, y, width, height)`` of the face in ``rgb_linear``'s pixels.
    rendered : bool
        Whether the source went through a tone curve (a JPEG, a TIFF).
    centre_fraction : float
        Part of the box's width and height measured, in (0, 1].

    Returns
    -------
    float or None
        EV against a well-exposed face; None when the box lies outside the image.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    lum = face_centre_luminance(rgb_linear, box, centre_fraction)
    if lum is None:
        return None
    light = float(scene_light(max(lum, _MIN_LUMINANCE), rendered))
    return ev_of(max(light, _MIN_LUMINANCE), 2.0**FACE_LOG2)


#: The ring around a face read for its neighbourhood's light, in face-box sizes from the box's
#: centre: beyond the hair, ears and the soft edge of a shadow cast on the head (a head is about
#: 1.3 boxes wide and 1.6 tall), near enough to stand in the same light.
SURROUND_RING = (1.1, 1.6)
#: Percentile of the ring's luminance taken as its lit surfaces: the ring's own shadows, dark
#: clothes and hair fall below it, a specular glint or a lamp above.
SURROUND_PERCENTILE = 90.0
#: A ring pixel with a channel at or above this (linear, 1.0 = white) is a light source or a blown
#: highlight (a lamp beside a face, a window, the sky), not a surface the face's light falls on: left out.
SURROUND_CLIPPED = 0.95


def face_surround_ev(
    rgb_linear: np.ndarray,
    box: tuple[float, float, float, float],
    centre_fraction: float = 0.5,
) -> float | None:
    """How much darker a face's centre is than the lit surfaces around it, in EV (0 or less, usually).

    ``log2(face centre luminance / SURROUND_PERCENTILE-th percentile of the
    luminance in an elliptical ring SURROUND_RING box sizes from its centre)``,
    in the light the pixels hold (scene light for a RAW, display light for a
    rendered source: the light the renderer multiplies). A face in a shadow of
    its own is darker than its neighbourhood by the shadow's depth more than a
    lit face is: the one judgement a photo with a single face allows between
    a shadow and a darker skin or a darker scene.

    Parameters
    ----------
    rgb_linear : ndarray, float32, (H, W, 3)
        The proxy's linear RGB.
    box : tuple of float
        ``(x, y, width, height)`` of the face in ``rgb_linear``'s pixels.
    centre_fraction : float
        Part of the box's width and height read for the face, in (0, 1].

    Returns
    -------
    float or None
        None when the box lies outside the image or the ring has fewer than
        16 pixels inside it (a face filling the frame) that are under
        :data:`SURROUND_CLIPPED` (light sources, blown highlights).

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    face = face_centre_luminance(rgb_linear, box, centre_fraction)
    if face is None:
        return None
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    inner, outer = SURROUND_RING
    bounds = _crop_bounds((cx - outer * w, cy - outer * h, 2 * outer * w, 2 * outer * h), rgb_linear.shape)
    if bounds is None:
        return None
    x0, y0, x1, y1 = bounds
    # Each pixel's squared distance in box sizes: one term per column plus one per row, broadcast.
    dx2 = ((np.arange(x0, x1) + 0.5 - cx) / max(w, 1e-6)) ** 2
    dy2 = ((np.arange(y0, y1) + 0.5 - cy) / max(h, 1e-6)) ** 2
    r2 = dy2[:, None] + dx2[None, :]
    near = rgb_linear[y0:y1, x0:x1]
    ring = (r2 >= inner**2) & (r2 < outer**2) & (brightest_channel(near) < SURROUND_CLIPPED)
    if ring.sum() < 16:
        return None
    lit = float(np.percentile(luminance(near[ring]), SURROUND_PERCENTILE))
    return math.log2(max(face, _MIN_LUMINANCE) / max(lit, _MIN_LUMINANCE))


#: The band of a face read for its skin alone (:func:`face_skin_ev`), in shares of the way from the line of its
#: eyes down to the line of its mouth: under the eyes (a pair of dark glasses reaches about a quarter of the way
#: down) and over the lips (the teeth of a smile), across the cheeks and the nose.
SKIN_BAND = (0.35, 0.85)
#: Fewest proxy pixels in the band for a reading (a face about 25 px wide on the proxy has them).
SKIN_BAND_MIN_PIXELS = 16


def face_skin_ev(
    rgb_linear: np.ndarray,
    landmarks: list[float] | tuple[float, ...],
    rendered: bool = False,
) -> float | None:
    """Exposure of a face's skin under its eyes (cheeks and nose), in EV on :func:`face_exposure_ev`'s scale.

    The centre of the box, where :func:`face_exposure_ev` reads a face, holds
    its eyes: behind dark glasses it reads as dark as a face in a shadow, and
    in crowd photos (WIDER FACE's parades and demonstrations) a fifth of the
    faces the faces rule lifted were lit faces behind sunglasses. The band of
    :data:`SKIN_BAND` between the eyes' line and the mouth's, from one eye's
    centre to the other's (or the mouth's corners, where wider), holds skin
    alone on a face looking at the camera. A shadow dims it with the rest of the face; glasses, brows
    and teeth are out of it. The median luminance there, taken back to
    scene light for a rendered source, against :data:`~pipeline.imaging.measure.metering.FACE_LOG2`:
    a lit face reads a little above its centre (no eyes in it), so the
    reading is compared between faces, not with the centre's.

    Parameters
    ----------
    rgb_linear : ndarray, float32, (H, W, 3)
        The proxy's linear RGB.
    landmarks : sequence of float
        Ten numbers in ``rgb_linear``'s pixels (:attr:`~pipeline.kernel.records.Face.landmarks`' order: the
        eyes, the nose, the mouth's corners).
    rendered : bool
        Whether the source went through a tone curve.

    Returns
    -------
    float or None
        None without five landmarks, when the mouth is not under the eyes (a face upside down or seen from
        the side), or when the band holds fewer than :data:`SKIN_BAND_MIN_PIXELS` pixels inside the image.
    """
    if len(landmarks) != 10:
        return None
    (lx, ly), (rx, ry), _, (mlx, mly), (mrx, mry) = (landmarks[k : k + 2] for k in range(0, 10, 2))
    eyes_y, mouth_y = (ly + ry) / 2.0, (mly + mry) / 2.0
    drop = mouth_y - eyes_y
    if not drop > 0:
        return None
    h, w = rgb_linear.shape[:2]
    x0, x1 = max(0, int(math.floor(min(lx, mlx)))), min(w, int(math.ceil(max(rx, mrx))))
    y0 = max(0, int(math.floor(eyes_y + SKIN_BAND[0] * drop)))
    y1 = min(h, int(math.ceil(eyes_y + SKIN_BAND[1] * drop)))
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < SKIN_BAND_MIN_PIXELS:
        return None
    lum = float(np.median(luminance(rgb_linear[y0:y1, x0:x1])))
    light = float(scene_light(max(lum, _MIN_LUMINANCE), rendered))
    return ev_of(max(light, _MIN_LUMINANCE), 2.0**FACE_LOG2)


def face_colour(
    rgb_linear: np.ndarray,
    box: tuple[float, float, float, float],
    centre_fraction: float = 0.5,
) -> list[float] | None:
    """Median linear RGB of a face's centre (the region :func:`face_exposure_ev` reads).

    The skin's colour, per channel, without eyes, brows and highlights (the
    median): the white-balance rule checks that its planned gains keep it skin.

    Parameters
    ----------
    rgb_linear : ndarray, (H, W, 3)
        Scene-linear RGB (the proxy's ``rgb``).
    box : tuple of float
        ``(x, y, width, height)`` of the face in ``rgb_linear``'s pixels.
    centre_fraction : float
        Part of the box's width and height read, in (0, 1].

    Returns
    -------
    list of float or None
        ``[r, g, b]``; None when the box lies outside the image.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    centre = _face_centre(rgb_linear, box, centre_fraction)
    return None if centre is None else [float(v) for v in np.median(centre.reshape(-1, 3), axis=0)]


def face_clipped_pct(
    rgb_linear: np.ndarray,
    box: tuple[float, float, float, float],
    centre_fraction: float = 0.5,
) -> float | None:
    """Percent of a face centre's pixels (the region :func:`face_exposure_ev` reads) with a channel clipped at white.

    The skin's highlights: a face made a stop or more too bright loses its
    forehead and cheeks to white (the accuracy benchmark's faces 1 to 2 EV over
    clip 5-80 % of their centres), while a face exposed bright on purpose, a
    high-key headshot on a white seamless, keeps its detail whatever the
    backdrop does. Counted at the frame's level
    (:data:`~pipeline.imaging.measure.exposure.HIGHLIGHT_LEVEL`, 8-bit 255).

    Returns
    -------
    float or None
        None when the box lies outside the image.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    centre = _face_centre(rgb_linear, box, centre_fraction)
    if centre is None:
        return None
    return float(np.count_nonzero(brightest_channel(centre) >= np.float32(HIGHLIGHT_LEVEL))) * 100.0 / (
        centre.shape[0] * centre.shape[1])


def face_sharpness(
    srgb8: np.ndarray, box: tuple[float, float, float, float], width: int = SHARPNESS_WIDTH
) -> float | None:
    """Sharpness of a face: variance of the Laplacian at a fixed face width.

    The face is resampled to ``width`` pixels across before the Laplacian, so
    the figure does not grow with the face's size in pixels (a Laplacian's
    variance scales roughly with the fourth power of the image scale) and a
    distant face compares with a close-up. Measured on 8-bit grey sRGB values
    (0-255), the scale on which the usual "variance of Laplacian" blur
    thresholds (around 100) are quoted; the figure is the whole image's
    (:func:`~pipeline.imaging.measure.focus.laplacian_variance`) at another
    scale, so the two do not compare.

    Parameters
    ----------
    srgb8 : ndarray, uint8, (H, W, 3)
        The proxy in 8-bit sRGB.
    box : tuple of float
        ``(x, y, width, height)`` of the face in ``srgb8``'s pixels.
    width : int
        Width the face is resampled to.

    Returns
    -------
    float or None
        Higher is sharper. On the test photos, in-focus faces 130-480 px wide
        read 200-1100; faces under 40 px, upscaled to 128, read under 30.
        None when the box lies outside the image.

    Raises
    ------
    ValueError
        If ``width`` is below 8.
    """
    if width < 8:
        raise ValueError(f"sharpness width must be at least 8 pixels, got {width}")
    bounds = _crop_bounds(box, srgb8.shape)
    if bounds is None:
        return None
    x0, y0, x1, y1 = bounds
    grey = cv2.cvtColor(np.ascontiguousarray(srgb8[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    ch, cw = grey.shape
    height = max(8, round(ch * width / cw))
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_CUBIC
    grey = cv2.resize(grey, (width, height), interpolation=interp)
    return laplacian_variance(grey)


def min_face_size(image_width: int, image_height: int, min_face_px: float, min_face_fraction: float) -> float:
    """Smallest face (short side of its box, full-resolution px) worth retouching."""
    return max(float(min_face_px), min_face_fraction * min(image_width, image_height))


def measure_faces(
    proxy: Proxy,
    detections: list[Detection],
    image_size: tuple[int, int],
    rendered: bool = False,
    min_face_px: float = 40,
    min_face_fraction: float = 0.02,
    centre_fraction: float = 0.5,
) -> list[Face]:
    """Turn full-resolution detections into :class:`Face` records, left to right.

    Boxes are clipped to the image; exposure and sharpness are measured on the
    proxy at the box's proxy position.

    Parameters
    ----------
    proxy : Proxy
        The image's analysis proxy.
    detections : list of Detection
        Faces in full-resolution pixels (:func:`detect_on_proxy`).
    image_size : (width, height)
        The oriented full-resolution size.
    rendered, min_face_px, min_face_fraction, centre_fraction
        See :func:`face_exposure_ev` and :func:`min_face_size`.

    Raises
    ------
    ValueError
        If ``centre_fraction`` is not in (0, 1].
    """
    width, height = image_size
    smallest = min_face_size(width, height, min_face_px, min_face_fraction)
    faces = []
    for d in sorted(detections, key=lambda d: (d.box[0], d.box[1])):
        x, y, w, h = d.box
        x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
        x1, y1 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
        if x1 <= x0 or y1 <= y0:
            continue  # entirely outside the frame: nothing to retouch
        box = (x0, y0, x1 - x0, y1 - y0)
        on_proxy = tuple(v / proxy.scale for v in box)
        marks = [v / proxy.scale for point in d.landmarks for v in point]  # on the proxy
        faces.append(
            Face(
                x=x0,
                y=y0,
                width=x1 - x0,
                height=y1 - y0,
                score=d.score,
                landmarks=[v for point in d.landmarks for v in point],
                exposure_ev=face_exposure_ev(
                    proxy.rgb, on_proxy, rendered, centre_fraction  # type: ignore[arg-type]
                ),
                sharpness=face_sharpness(proxy.srgb8, on_proxy),  # type: ignore[arg-type]
                too_small=min(x1 - x0, y1 - y0) < smallest,
                colour_rgb=face_colour(proxy.rgb, on_proxy, centre_fraction),  # type: ignore[arg-type]
                clipped_pct=face_clipped_pct(proxy.rgb, on_proxy, centre_fraction),  # type: ignore[arg-type]
                surround_ev=face_surround_ev(proxy.rgb, on_proxy, centre_fraction),  # type: ignore[arg-type]
                skin_ev=face_skin_ev(proxy.rgb, marks, rendered),
                red_eyes=[round(v * proxy.scale, 1) for eye in find_red_eyes(proxy.rgb, marks) for v in eye],
            )
        )
    return faces
