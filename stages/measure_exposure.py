"""Stage shell around :mod:`pipeline.imaging.measure`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy
from pipeline.imaging.lens_profile import find_profile, lens_grid
from pipeline.imaging.measure import is_rendered, measure_all
from pipeline.kernel.records import ImageRecord, WorkItem
from pipeline.kernel.stage import Resources, Stage

#: A pixel at least this opaque is part of the picture the exposure is metered on (a cut-out's background,
#: flattened onto white, is not).
OPAQUE = 0.5


class MeasureExposure(Stage):
    """Exposure, clipping, white balance, focus, noise, tilt and pHash of the proxy."""

    name: ClassVar[str] = "measure_exposure"
    description: ClassVar[str] = (
        "Exposure meter reading, luminance percentiles, clipping, WB cast, sharpness, noise, "
        "horizon/verticals tilt, pHash (on the proxy)"
    )
    reads = frozenset({"source_kind", "camera"})
    writes = frozenset({"exposure", "colour", "focus", "lines", "content"})
    consumes = frozenset({"proxy"})
    resources = Resources(cpus=1, memory_mb=600)
    # 2: a white backdrop that surrounds its subject is found when the subject clips, or the backdrop is blown in
    # one channel (records journalled before are measured again on a rerun). 3: a sweep whose light falls off
    # towards the corners is found, and its falloff recorded. 4: the subject's map (saliency_map), which the crops
    # placed on the salient object are placed on. 5: the verticals' convergence (a keystone), its steadiness and
    # one-sidedness, read through the vanishing point; a RAW's lines read with its lens's distortion undone. 6: the
    # share of black pixels (every channel at black), which the shadows check reads instead of the worst channel.
    # 7: the sharpness of the frame's sharpest part (sharpness_peak), which clears a frame in focus somewhere.
    # 8: the chroma beyond the picture's tone (off_tone_chroma_p99): a toned black-and-white picture keeps its tone.
    # 9: the proxy's noise as the renderer reads a picture's (noise_luma, noise_red_green, noise_blue_green), which the
    # plan compares across a camera's frames. 10: how far off the light's tint may be (wb_tint_uncertainty), which
    # the plan believes each frame's tint by. 11: the bars a picture was padded with (border_bars), which its crops
    # leave out. 12: the share of the top quarter that is blue sky (sky_share), under which a daylight scene's shade
    # reads cool by nature. 13: that sky's colour (sky_rgb), which a correction may not turn teal or purple unseen.
    version = 13

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        highlight_clip_level: float = Field(
            0.995, gt=0.5, le=1.0, description="A channel at or above this linear value is clipped at white."
        )
        shadow_clip_level: float = Field(
            1.0 / 4096, ge=0, lt=0.05, description="A channel at or below this linear value is crushed to black."
        )
        colour_checker: bool = Field(
            True, description="Look for a ColorChecker 24 in every frame and read the white balance off its greys "
            "where one is found (25-70 ms a frame); false for a studio that never shoots one.",
        )

    def process(self, item: WorkItem) -> None:
        proxy: Proxy = item.artifacts["proxy"]
        rendered = is_rendered(item.record.source_kind)
        p = self.params
        m = measure_all(proxy.rgb, rendered, p.highlight_clip_level, p.shadow_clip_level, luma=proxy.luma,
                        look_for_chart=p.colour_checker,
                        opaque=None if proxy.opacity is None else proxy.opacity >= OPAQUE,
                        line_luma=None if rendered else undistorted(item.record, proxy.luma),
                        threads=self.context.threads_per_worker)
        r = item.record
        r.exposure, r.colour, r.focus, r.lines, r.content = m.exposure, m.colour, m.focus, m.lines, m.content


def undistorted(record: ImageRecord, luma: np.ndarray) -> np.ndarray | None:
    """The proxy's luminance with the lens's distortion undone, where lensfun profiles the body and lens the RAW
    names (:func:`~pipeline.imaging.lens_profile.find_profile`, as the lens rule finds it): the straight lines a wide
    angle bowed are read straight, in the geometry the renderer delivers when the chart corrects the lens. None
    when no profile says how the lens draws (the lines are read as shot)."""
    camera = record.camera
    match = find_profile(camera.make, camera.model, camera.lens, camera.focal_length_mm, camera.aperture,
                         distortion=True, vignetting=False, chromatic_aberration=False)
    if match.profile is None:
        return None
    h, w = luma.shape
    return lens_grid(match.profile, w, h).corrected_picture(luma)
