"""Measurements of the analysis proxy, one module per topic.

Everything here reads the scene-linear proxy (Rec.709 primaries, 1.0 = white)
or its luminance and returns plain numbers or the record's typed groups:

- :mod:`~pipeline.imaging.measure.metering`: the exposure meter in scene
  light (rendered sources through the inverse of a camera-like tone curve),
  what a well-exposed photograph and face look like, and the shadow contrast;
- :mod:`~pipeline.imaging.measure.exposure`: luminance percentiles, the
  exposure verdict and clipping;
- :mod:`~pipeline.imaging.measure.colour`: the white-balance cast;
- :mod:`~pipeline.imaging.measure.focus`: sharpness and noise;
- :mod:`~pipeline.imaging.measure.lines`: horizon and verticals tilt;
- :mod:`~pipeline.imaging.measure.content`: perceptual hash, saliency and palette;
- :mod:`~pipeline.imaging.measure.proxy`: all of them on one proxy
  (:func:`measure_all`), sharing working copies;
- :mod:`~pipeline.imaging.measure.common`: input checks and working copies.

The functions are pure (numpy arrays in, numbers out); the stage shell is
``stages/measure_exposure.py``.
"""

from pipeline.imaging.measure.colour import WhiteBalanceCast, colour_measure, white_balance_cast
from pipeline.imaging.measure.common import WORK_LONG_EDGE, encode_luma, resize_long_edge
from pipeline.imaging.measure.content import (
    content_measure,
    hamming,
    palette,
    palette_distance,
    phash,
    saliency_centre,
)
from pipeline.imaging.measure.exposure import clipped_pct, exposure_measure, exposure_verdict, luminance_percentiles
from pipeline.imaging.measure.focus import (
    display_noise_sigma,
    focus_measure,
    laplacian_variance,
    noise_sigma,
    sharpness,
)
from pipeline.imaging.measure.lines import LineTilts, line_measure, line_tilts
from pipeline.imaging.measure.metering import (
    FACE_LOG2,
    KEY_LOG2,
    WHITE_LOG2,
    ev_of,
    exposure_ev,
    inverse_tone_curve,
    is_rendered,
    meter_log2,
    meter_rendered,
    meter_scene_linear,
    metering_reference,
    scene_light,
    shadow_contrast_log2,
    tone_curve,
)
from pipeline.imaging.measure.proxy import ProxyMeasures, measure_all

__all__ = [
    "FACE_LOG2",
    "KEY_LOG2",
    "WHITE_LOG2",
    "WORK_LONG_EDGE",
    "LineTilts",
    "ProxyMeasures",
    "WhiteBalanceCast",
    "clipped_pct",
    "colour_measure",
    "content_measure",
    "display_noise_sigma",
    "encode_luma",
    "ev_of",
    "exposure_ev",
    "exposure_measure",
    "exposure_verdict",
    "focus_measure",
    "hamming",
    "inverse_tone_curve",
    "is_rendered",
    "laplacian_variance",
    "line_measure",
    "line_tilts",
    "luminance_percentiles",
    "measure_all",
    "meter_log2",
    "meter_rendered",
    "meter_scene_linear",
    "metering_reference",
    "noise_sigma",
    "palette",
    "palette_distance",
    "phash",
    "resize_long_edge",
    "saliency_centre",
    "scene_light",
    "shadow_contrast_log2",
    "sharpness",
    "tone_curve",
    "white_balance_cast",
]
