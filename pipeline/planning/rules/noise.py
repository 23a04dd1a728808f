"""Noise reduction (the chart's ``noise``): the renderer reads each picture's noise at its own size and takes it down.

The plan cannot know how much noise a rendition holds (a web picture made small from a 24 MP frame has averaged most
of it away, a full-size master has not), so the rule only says how far to go, one ``reduce_noise`` operation an
image that a reviewer can turn down; the renderer reads the noise of every picture it makes and leaves alone one
whose grain reads as a clean photograph's (:mod:`pipeline.imaging.denoise`). Its reason gives what the analysis
read on the proxy and the ISO, for a person deciding whether a frame is too noisy to deliver.

A picture of fine texture everywhere (moss, gravel, a carpet, a knit) has no flat part where the noise shows alone,
and its texture reads as noise: reduced, it is smoothed. The shoot's other frames from the same camera say what its
noise is. A sensor's noise, in the square root of linear light, grows as the square root of its ISO (its photon
noise: the light a photosite counts for white falls as the ISO rises), so a camera's frames read, each over the
square root of its ISO, about one number; a frame that reads far above what its camera reads at its ISO
(:func:`noise_shares`) holds texture, and the renderer takes for noise only the share of its reading that the
camera's frames account for.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from charts.schema import Chart, NoiseSources
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, SourceKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

#: A frame's reading is taken for noise up to this many times what its camera reads at its ISO (the median over the
#: shoot's frames from that camera of each reading over the square root of its ISO). Chosen by
#: ``benchmarks/noise.py --fit`` on the tuning split (``benchmarks/NOISE_FIT.md``): the smallest margin whose median
#: gain at every noise level stays within 0.1 dB of the whole reading's, of 1.5 to 3 (under 1.5 the margin would be
#: within the spread of a camera's readings of smooth frames: a tenth of the light twins read 1.35 times it or more).
NOISE_MARGIN = 1.5
#: A camera's reading is known from this many of its frames with an ISO and a reading, or more (by judgement: the
#: median of five is not moved by two frames of texture).
MIN_CAMERA_FRAMES = 5


@dataclass(frozen=True, slots=True)
class NoiseShares:
    """Of a frame's noise readings (brightness, red less green, blue less green), the shares that are noise
    (:func:`noise_shares`), with what its camera reads at its ISO on the shoot's ``frames`` frames from it."""

    shares: tuple[float, float, float]
    read: float
    expected: float
    frames: int


def _camera(record: ImageRecord) -> tuple[str, str, str] | None:
    camera = record.camera
    if not (camera.make or camera.model):
        return None
    return str(record.source_kind), camera.make or "", camera.model or ""


def _readings(record: ImageRecord) -> tuple[float | None, float | None, float | None]:
    """The frame's three noise readings, each None where it has none (a black-and-white picture has no colour
    noise to read)."""
    focus = record.focus
    return tuple(v if v is not None and v > 0 else None  # type: ignore[return-value]
                 for v in (focus.noise_luma, focus.noise_red_green, focus.noise_blue_green))


def noise_shares(records: Sequence[ImageRecord], chart: Chart,
                 plans: Mapping[int, PlanState]) -> dict[int, list[Operation]]:
    """A shoot rule: each frame whose noise readings (``focus.noise_luma``, ``noise_red_green``,
    ``noise_blue_green``: the proxy's, as the renderer reads a picture's) are above :data:`NOISE_MARGIN` times what
    its camera reads at its ISO, by the shoot's frames from that camera (its source kind, make and model;
    :data:`MIN_CAMERA_FRAMES` of them or more with an ISO and that reading), gets the shares of its readings that
    are noise on its plan (``plan.noise_shares``): what its camera accounts for over what it reads, where its
    brightness reads above its camera's (texture shows there; the colour alone is not judged). No operation."""
    if not (chart.noise.luminance or chart.noise.colour):
        return {}
    # Each record read once (a record store's view unpickles it): its readings over the square root of its ISO.
    cameras: dict[tuple[str, str, str], list[tuple[int, float, tuple[float | None, ...]]]] = {}
    for i in plans:
        record = records[i]
        iso, read = record.camera.iso, _readings(record)
        if iso and iso > 0 and read[0] is not None and (key := _camera(record)):  # plans: analysed frames only
            root = math.sqrt(iso)
            cameras.setdefault(key, []).append((i, root, tuple(None if r is None else r / root for r in read)))
    for frames in cameras.values():
        columns = [[scaled[c] for _, _, scaled in frames if scaled[c] is not None] for c in range(3)]
        camera = [statistics.median(col) if len(col) >= MIN_CAMERA_FRAMES else None for col in columns]
        if camera[0] is None:
            continue
        for i, root, scaled in frames:
            luma, red_green, blue_green = (1.0 if c is None or s is None else min(1.0, NOISE_MARGIN * c / s)
                                           for c, s in zip(camera, scaled))
            # Texture shows in the brightness: a frame whose brightness reads as its camera's keeps its whole colour
            # reading too (the colour noise of a colourful scene reads above the camera's: a dark channel's read
            # noise; capped alone, it cost such noisy twins up to 1.3 dB on the tuning split).
            if luma < 1.0:
                read = scaled[0] * root  # type: ignore[operator]
                plans[i].noise_shares = NoiseShares((luma, red_green, blue_green), read, camera[0] * root, len(frames))
    return {}


def plan_noise(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``reduce_noise`` operation where the chart reduces noise and the source is one it names, with the shares of
    the frame's readings that are noise where its camera's other frames say some of it is texture
    (:func:`noise_shares`)."""
    rules = chart.noise
    if not (rules.luminance or rules.colour):
        return []
    if rules.sources is NoiseSources.RAW and record.source_kind is not SourceKind.RAW:
        return []
    iso = record.camera.iso
    read = record.focus.noise_sigma
    seen = ", ".join(([f"ISO {iso:.0f}"] if iso else [])
                     + ([f"{read:.1f} of 255 on the proxy"] if read is not None else []))
    params: dict[str, object] = {"luminance": rounded(rules.luminance, 2), "colour": rounded(rules.colour, 2)}
    texture = ""
    shares = plan.noise_shares
    if shares is not None:
        params["read_shares"] = [rounded(max(0.01, s), 3) for s in shares.shares]
        luma, red_green, blue_green = shares.shares
        texture = (f"; it reads {shares.read / shares.expected:.1f}x the noise its camera reads at this ISO on "
                   f"{shares.frames} frames of the shoot: fine texture, not noise, so {luma:.0%} of its brightness's "
                   f"reading is taken for noise ({red_green:.0%} and {blue_green:.0%} of its colour's)")
    return [Operation(
        op_id="reduce_noise", kind=OperationKind.REDUCE_NOISE, params=params,
        reason=f"noise read at each delivered size and taken down where it shows ({seen or 'no reading'}): "
               f"luminance {rules.luminance:g}, colour {rules.colour:g} of the measured amount" + texture,
        measured=None if read is None else rounded(read, 2), confidence=1.0, applied_by=AppliedBy.RENDERER,
    )]
