"""Every measurement of one image's proxy at once, as the record's typed groups.

The topics share their working copies: the luminance of the proxy, its copy
at :data:`~pipeline.imaging.measure.common.WORK_LONG_EDGE` and that copy
sRGB-encoded are each made once here and handed to every topic that reads them.
Given threads, the two longest topics (the colour, with its ColorChecker search,
and the straight lines) run beside the others: they only read the shared
arrays, so the measures are the same as one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.imaging.color import luminance
from pipeline.imaging.measure.colour import colour_measure
from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_rgb, encode_luma, resize_long_edge
from pipeline.imaging.measure.content import content_measure
from pipeline.imaging.measure.exposure import backdrop_colour, exposure_measure, white_backdrop
from pipeline.imaging.measure.focus import focus_measure
from pipeline.imaging.measure.lines import line_measure
from pipeline.kernel.beside import beside
from pipeline.kernel.records import ColourMeasure, ContentMeasure, ExposureMeasure, FocusMeasure, LineMeasure


@dataclass(frozen=True)
class ProxyMeasures:
    """The record groups that :func:`measure_all` fills, ready to assign to an ImageRecord."""

    exposure: ExposureMeasure
    colour: ColourMeasure
    focus: FocusMeasure
    lines: LineMeasure
    content: ContentMeasure


def measure_all(
    rgb: np.ndarray,
    rendered: bool,
    highlight_level: float = 0.995,
    shadow_level: float = 1.0 / 4096,
    luma: np.ndarray | None = None,
    look_for_chart: bool = True,
    opaque: np.ndarray | None = None,
    line_luma: np.ndarray | None = None,
    threads: int = 1,
) -> ProxyMeasures:
    """Exposure, colour, focus, lines and content of one linear proxy.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear Rec.709 RGB, 1.0 = white (scene-linear for a RAW, display-linear for a rendered source).
    rendered : bool
        True for tone-mapped sources (JPEG), False for RAW: which meter reads the exposure, and whether the
        white balance is read through the inverse tone curve.
    highlight_level, shadow_level : float
        Clipping levels (:func:`~pipeline.imaging.measure.exposure.clipped_pct`).
    luma : ndarray, (H, W), optional
        ``luminance(rgb)`` when the caller has it already (``Proxy.luma``); read, never changed.
    look_for_chart : bool
        Read the white balance off a ColorChecker where one is in the frame (:func:`colour_measure`).
    opaque : ndarray of bool, (H, W), optional
        For a picture with transparency, its opaque pixels: the exposure is metered and its clipping counted on
        them (:func:`~pipeline.imaging.measure.exposure.exposure_measure`); the white balance already leaves
        the flattened background out (its white is clipped). A white backdrop
        (:func:`~pipeline.imaging.measure.exposure.white_backdrop`) is left out of the exposure too, and the
        white balance is read off it where it says what the light is
        (:func:`~pipeline.imaging.measure.colour.backdrop_light`).
    line_luma : ndarray, (h, w), optional
        The luminance the straight lines are read on, when not ``luma``: a RAW's with its lens's distortion undone
        (:meth:`~pipeline.imaging.lens_profile.LensGrid.corrected_picture`), so that its lines are straight.
    threads : int
        Above 1, the colour and the lines are measured in two more threads beside the rest (the process's
        own CPUs to spare: the in-process executor's); the same measures.

    Returns
    -------
    ProxyMeasures

    Raises
    ------
    ValueError
        On a malformed array (``luma`` not the float32 luminance's shape).
    InputError
        When half the image is pure black (nothing to meter).
    """
    rgb = check_rgb(rgb)
    if luma is None:
        luma = luminance(rgb)
    elif luma.shape != rgb.shape[:2] or luma.dtype != np.float32:
        raise ValueError(f"luma must be the float32 luminance of the {rgb.shape[1]}x{rgb.shape[0]} image, "
                         f"got {luma.dtype} of shape {luma.shape}")
    small = resize_long_edge(luma, WORK_LONG_EDGE)
    encoded_small = encode_luma(small)
    lines = beside(threads, line_measure, luma if line_luma is None else line_luma, undistorted=line_luma is not None)
    backdrop = white_backdrop(rgb)
    sweep = None if backdrop is None else backdrop_colour(rgb, backdrop)  # read once: meter, light and render
    colour = beside(threads, colour_measure, rgb, rendered=rendered, look_for_chart=look_for_chart, backdrop_rgb=sweep)
    exposure = exposure_measure(
        rgb, luma, small, rendered=rendered, highlight_level=highlight_level, shadow_level=shadow_level,
        opaque=opaque, backdrop=None if backdrop is None else backdrop.mask, backdrop_rgb=sweep,
        backdrop_falloff=None if backdrop is None else backdrop.falloff,
    )
    focus, content = focus_measure(luma, encoded_small, rgb), content_measure(encoded_small, rgb)
    return ProxyMeasures(exposure=exposure, colour=colour.result(), focus=focus, lines=lines.result(), content=content)
