"""A chart's targets learned from what a client approved (``postprod charts learn``) and from what its
reviewers did to the plan's corrections (``postprod charts learn-from-reviews``).

The meter's 0 EV is where a typical published photograph sits, and well-exposed
photographs stray from it by 0.74 EV rms (:mod:`pipeline.imaging.measure.metering`):
a bright, airy interior reads half a stop over, a candle-lit bistro table a stop
under, and neither is wrong. No meter tells them apart from photos that are off.
One client's deliveries stray less from each other than photographs in general
do, and to one side. The chart's ``exposure.target_ev`` is where the plan puts an
image. Set to where the client's approved photos read, it leaves photos like
them as they are, and still brings a frame that is off back to where this
client wants it. Reviewers say the same with every correction they accept,
change or reject: each one says where that image wanted the target
(:func:`reviewed_readings`), for the exposure and for the white balance's warmth.

The key is the readings' interquartile mean (:func:`central_key`), not their
median: a client's photos are a few dozen, often in two clusters (day and dusk
exteriors), and the median of such a set jumps from one cluster's edge to the
other's when a single photo is added or left out.

The figures a learned chart is judged by are read with each photo left out of
its own target (:func:`learn_key`): the target every photo is judged against was
learned from the others, as a new shoot's frames will be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Fewer approved photos than this say too little about a client's key to write it down.
MIN_PHOTOS = 8
#: The learned target is written to this step (a twentieth of a stop: below what anyone sees).
TARGET_STEP_EV = 0.05
#: The chart schema's range for ``exposure.target_ev``.
TARGET_RANGE_EV = (-3.0, 3.0)


@dataclass(frozen=True)
class LearnedKey:
    """Where a set of readings puts a chart's target, and how near it brings them.

    In the readings' unit: EV for ``exposure.target_ev`` (the meter's readings of approved photos, or
    where reviewers wanted each image's target), mired for a white balance's target.

    Attributes
    ----------
    n : int
        Readings.
    base_target, tolerance : float
        The extended chart's target and tolerance.
    target : float
        The learned target: :func:`central_key` of the readings, to the step and within the bounds
        :func:`learn_key` was given.
    spread : float
        How far the readings stray from each other: 1.4826 times their median absolute deviation (a
        normal spread's estimate that one odd reading does not move).
    before_median, after_median : float
        Median |reading - target| with the extended chart's target, and with the learned one (each
        reading's target learned from the others).
    before_within, after_within : int
        Readings within ``tolerance`` of the target, the same two ways: the images the plan leaves
        alone for certain (it also leaves alone readings it is not sure of).
    """

    n: int
    base_target: float
    tolerance: float
    target: float
    spread: float
    before_median: float
    after_median: float
    before_within: int
    after_within: int

    @property
    def helps(self) -> bool:
        """Whether the learned key brings the photos nearer their target: a smaller median offset, and no
        fewer of them within the tolerance."""
        return self.after_median < self.before_median and self.after_within >= self.before_within


def central_key(readings: np.ndarray) -> float:
    """The mean of the middle half of the readings (a quarter dropped at each end, rounded down).

    Robust as a median to the odd photo (a night shot among daylight ones), and smooth: one photo more
    or less moves it by a fraction of the readings' spacing, not by a whole gap between two clusters.
    """
    r = np.sort(np.asarray(readings, dtype=np.float64))
    cut = r.size // 4
    return float(r[cut:r.size - cut].mean())


def learn_key(readings: list[float], base_target: float, tolerance: float, step: float = TARGET_STEP_EV,
              bounds: tuple[float, float] = TARGET_RANGE_EV) -> LearnedKey:
    """A chart's target from readings of where images want it (by default an exposure key in EV: the meter's
    readings of approved photos against its 0), written to ``step`` within ``bounds``.

    Raises
    ------
    ValueError
        With fewer than :data:`MIN_PHOTOS` finite readings.
    """
    r = np.asarray([x for x in readings if x is not None and math.isfinite(x)], dtype=np.float64)
    if r.size < MIN_PHOTOS:
        raise ValueError(f"{r.size} photo(s) could be read; a client's key needs at least {MIN_PHOTOS}")
    centre = central_key(r)
    target = min(bounds[1], max(bounds[0], round(centre / step) * step))
    left_out = np.clip([central_key(np.delete(r, i)) for i in range(r.size)], *bounds)
    before = np.abs(r - base_target)
    after = np.abs(r - left_out)
    return LearnedKey(
        n=int(r.size), base_target=base_target, tolerance=tolerance, target=round(target, 2),
        spread=float(1.4826 * np.median(np.abs(r - np.median(r)))),
        before_median=float(np.median(before)), after_median=float(np.median(after)),
        before_within=int(np.sum(before <= tolerance)), after_within=int(np.sum(after <= tolerance)),
    )


def summary_lines(key: LearnedKey, parent: str) -> list[str]:
    """The learned key in words: what the photos read, and what the chart does to them before and after."""
    side = "over" if key.target > 0 else "under"
    return [
        f"{key.n} approved photos read {abs(key.target):.2f} EV {side} the meter's 0 (their middle half's mean; "
        f"spread {key.spread:.2f} EV): exposure.target_ev {key.target:+.2f} (was {key.base_target:+.2f} "
        f"in {parent})",
        f"each photo against the others' key: median |offset| {key.before_median:.2f} -> "
        f"{key.after_median:.2f} EV; within the {key.tolerance:g} EV tolerance "
        f"{key.before_within} -> {key.after_within} of {key.n}",
    ]


@dataclass(frozen=True)
class Setting:
    """A chart setting a review can teach: its name, unit, format and which way is which."""

    name: str
    unit: str
    fmt: str
    up: str
    down: str


EXPOSURE_TARGET = Setting("exposure.target_ev", "EV", "{:.2f}", "more light", "less light")
WARM_SHIFT = Setting("white_balance.warm_shift_mired", "mired", "{:.0f}", "warmer", "cooler")


def review_lines(key: LearnedKey, parent: str, counts: dict[str, int], what: str = "exposure",
                 setting: Setting = EXPOSURE_TARGET) -> list[str]:
    """:func:`summary_lines` of a target learned from reviewers' amounts (:func:`reviewed_readings`)."""
    shift = key.target - key.base_target
    how = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    f, u = setting.fmt.format, setting.unit
    return [
        f"{key.n} reviewed {what} corrections ({how}) asked for {f(abs(shift))} {u} "
        f"{setting.up if shift >= 0 else setting.down} than the plan gave (their middle half's mean; spread "
        f"{f(key.spread)} {u}): {setting.name} {f(key.target)} (was {f(key.base_target)} in {parent})",
        f"each correction against the others' target: median |change| {f(key.before_median)} -> "
        f"{f(key.after_median)} {u}; within the {key.tolerance:g} {u} tolerance of what the reviewer wanted "
        f"{key.before_within} -> {key.after_within} of {key.n}",
    ]


def reviewed_readings(amounts: list[tuple[str, float, float, str]], base_target: float) -> list[float]:
    """Where each reviewed image wanted the chart's target: ``base + wanted - planned`` (the plan's correction is
    the target minus the image's reading, so the correction the reviewer wanted is the one of that target).
    ``amounts`` as :func:`pipeline.outputs.decisions.reviewed_amounts` gives them."""
    return [base_target + wanted - planned for _, planned, wanted, _ in amounts]


def chart_text(sections: dict[str, dict], *, extends: str, description: str, client: str | None, learned_from: str,
               date: str, lines: list[str]) -> str:
    """The learned chart's YAML: it extends ``extends`` and sets only what ``sections`` hold (chart section ->
    keys); its comment header says how it was learned (``lines``)."""
    import yaml

    body: dict = {"schema_version": 2, "extends": extends, "description": description}
    if client:
        body["client"] = client
    body.update(sections)
    head = [f"# Learned by postprod (charts learn) on {date} from {learned_from}:", *(f"# {line}" for line in lines)]
    return "\n".join(head) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
