"""What the picture shows, for grouping and framing: perceptual hash, saliency, the salient object, colour palette.

The hash and saliency read sRGB-encoded luma, where differences are as large as
they look; the salient object and the palette read the proxy's colours.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel, darkest_channel, linear_to_srgb
from pipeline.imaging.measure.common import (
    WORK_LONG_EDGE,
    check_luma,
    check_rgb,
    encode_luma,
    resize_long_edge,
    subsample,
)
from pipeline.kernel.records import ContentMeasure


def phash(luma: np.ndarray) -> str:
    """64-bit DCT perceptual hash, as 16 hex digits.

    The sRGB-encoded luma is reduced to 32x32, the 8x8 lowest DCT frequencies
    kept, and each bit set where a coefficient exceeds their median (the
    classic pHash of Zauner 2010 / the ``imagehash`` package).

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance.

    Returns
    -------
    str
        16 lowercase hex digits, most significant bit = lowest frequency.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    luma = check_luma(luma)
    return phash_of_encoded(encode_luma(resize_long_edge(luma, WORK_LONG_EDGE)))


def phash_of_encoded(encoded: np.ndarray) -> str:
    """:func:`phash` of sRGB-encoded luma already at :data:`WORK_LONG_EDGE` (unchecked)."""
    tiny = cv2.resize(encoded, (32, 32), interpolation=cv2.INTER_AREA)
    dct = cv2.dct(tiny.astype(np.float32))[:8, :8]
    bits = (dct > np.median(dct)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex pHashes.

    Raises
    ------
    ValueError
        If either is not a 16-digit hex string.
    """
    return int(bin(_hash_int(a) ^ _hash_int(b)).count("1"))


def _hash_int(h: str) -> int:
    if not isinstance(h, str) or len(h) != 16:
        raise ValueError(f"a pHash is 16 hex digits, got {h!r}")
    try:
        return int(h, 16)
    except ValueError:
        raise ValueError(f"a pHash is 16 hex digits, got {h!r}") from None


def saliency_centre(encoded: np.ndarray, size: int = 64) -> tuple[float, float]:
    """Centre of the salient region, as fractions of width and height.

    Spectral residual saliency (Hou and Zhang, CVPR 2007): the log amplitude
    spectrum minus its local average keeps what is unexpected in the image;
    back in the image domain that is where the eye goes. The centre is the
    weighted mean of the most salient 5 % of a ``size`` x ``size`` map.

    Parameters
    ----------
    encoded : ndarray, (H, W)
        Gamma-encoded luminance in [0, 1].
    size : int
        Side of the square saliency map, in pixels (at least 8).

    Returns
    -------
    (x, y) : tuple of float
        In [0, 1], from the left and from the top.

    Raises
    ------
    ValueError
        If ``encoded`` is not a 2-D image of at least 8x8 or ``size`` is below 8.
    """
    encoded = check_luma(encoded)
    if size < 8:
        raise ValueError(f"the saliency map needs at least 8x8 pixels, got size={size}")
    small = cv2.resize(encoded, (size, size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amp = np.log(np.abs(spectrum) + 1e-8).astype(np.float32)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    keep = sal >= np.quantile(sal, 0.95)
    ys, xs = np.nonzero(keep)
    w = sal[keep]
    return float((xs * w).sum() / w.sum() + 0.5) / size, float((ys * w).sum() / w.sum() + 0.5) / size


#: Long edge (px) of the copy the salient object is found on: the barrier distance's cost grows with its pixels (about
#: 10 ms a frame at 64). On ``benchmarks/subject_crops.py``'s tuning split (its first 19 photos: 44 crops of the
#: photos as shot, 158 of them cut so the subject stands off the centre; maps made from the photos decoded directly)
#: 64 px cut the subject in 4 and 20 crops, 48 px in 8 and 25, 96 px in 6 and 26.
SALIENT_LONG_EDGE = 64
#: Raster passes of the barrier distance, each sweeping the copy down, up, right and left (there: 1 pass cut 9 and
#: 27, 4 passes 7 and 23).
SALIENT_PASSES = 2
#: Long edge (cells) of the salient object's map that the record keeps (``saliency_map``, a byte a cell): the crops
#: are placed on it (there: 24 cells cut 6 and 21, 32 cells 5 and 24).
SALIENT_MAP_LONG_EDGE = 16


def barrier_distance(channel: np.ndarray, passes: int = SALIENT_PASSES) -> np.ndarray:
    """Each pixel's minimum barrier distance to the frame's border in one channel: over the paths from the border,
    the least spread (highest value less lowest) met on the way (Strand et al. 2013), by raster sweeps as in Zhang
    et al., "Minimum Barrier Salient Object Detection at 80 FPS" (ICCV 2015). The background, joined to the border
    through colours like its own, reads low; an object set apart from all that touches the border reads high."""
    dist = np.full(channel.shape, np.inf, np.float32)
    dist[0, :] = dist[-1, :] = dist[:, 0] = dist[:, -1] = 0.0
    high, low, value = channel.copy(), channel.copy(), np.asarray(channel, np.float32)
    for _ in range(passes):
        for d, hi, lo, v in ((dist, high, low, value), (dist.T, high.T, low.T, value.T)):  # down and up, then across
            n = d.shape[0]
            for order in (range(1, n), range(n - 2, -1, -1)):
                for i in order:
                    before = i - order.step
                    top, bottom = np.maximum(hi[before], v[i]), np.minimum(lo[before], v[i])
                    better = top - bottom < d[i]
                    d[i][better], hi[i][better], lo[i][better] = (top - bottom)[better], top[better], bottom[better]
    return dist


def salient_object_map(rgb: np.ndarray) -> np.ndarray:
    """Where the picture's subject is, 0-1 on a grid of :data:`SALIENT_MAP_LONG_EDGE` cells along the long edge.

    The minimum barrier distance to the frame's border (:func:`barrier_distance`) of each channel of the picture in
    CIELAB (8-bit scale, on a copy :data:`SALIENT_LONG_EDGE` pixels long, its 99th percentile brought to white and
    encoded for sRGB), summed, against its highest and squared (what stands out most weighs most): a bird against
    a cliff, a dog beside a bicycle read high, the sky, a floor or a wall that runs to the edges low. Spectral
    residual saliency (:func:`saliency_centre`) reads what is unexpected, the cliff's texture as much as the bird,
    and a crop centred on it cut the subject more often than a centred one (``benchmarks/subject_crops.py``).
    Chosen on that benchmark's tuning split (the photos as shot, and cut so their subject stands off the centre;
    maps made from the photos decoded directly): squared, 4 and 20 crops of 44 and 158 cut their subject, against
    8 and 28 unsquared, 6 and 19 less the map's median, and 8 and 39 weighed down from the centre to the corners
    (Zhang et al.'s centre bias, which pulls a crop off a subject placed on a third). All zeros for a frame
    without light.

    Raises
    ------
    ValueError
        If ``rgb`` is not an RGB image.
    """
    small = resize_long_edge(check_rgb(rgb), SALIENT_LONG_EDGE)
    white = float(np.percentile(small.max(axis=2), 99.0))
    h, w = small.shape[:2]
    cells = resize_long_edge(np.zeros((h, w), np.float32), SALIENT_MAP_LONG_EDGE).shape
    if not white > 0:
        return np.zeros(cells, np.float32)
    encoded = cv2.GaussianBlur(linear_to_srgb(small / np.float32(white)), (0, 0), 1.0)
    lab = cv2.cvtColor(encoded, cv2.COLOR_RGB2LAB) * np.float32([2.55, 1.0, 1.0])  # L on the 8-bit scale a, b have
    salient = np.square(sum(barrier_distance(np.ascontiguousarray(lab[..., c])) for c in range(3)))
    grid = cv2.resize(salient, cells[::-1], interpolation=cv2.INTER_AREA)
    top = float(grid.max())
    return grid / np.float32(top) if top > 0 else np.zeros(cells, np.float32)  # an even picture: no subject


def encode_saliency_map(grid: np.ndarray) -> str:
    """A salient object's map (:func:`salient_object_map`) as the record keeps it: ``"WxH:"`` and a byte a cell in hex,
    row by row."""
    h, w = grid.shape
    return f"{w}x{h}:" + np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8).tobytes().hex()


def decode_saliency_map(text: str) -> np.ndarray:
    """The map :func:`encode_saliency_map` wrote, (H, W) float32 0-1.

    Raises
    ------
    ValueError
        If ``text`` is not such a map.
    """
    try:
        size, cells = text.split(":")
        w, h = (int(v) for v in size.split("x"))
        grid = np.frombuffer(bytes.fromhex(cells), np.uint8)
    except ValueError:
        raise ValueError(f"not a saliency map: {text[:40]!r}") from None
    if w < 1 or h < 1 or grid.size != w * h:
        raise ValueError(f"not a saliency map: {text[:40]!r}")
    return grid.reshape(h, w).astype(np.float32) / 255


#: Palette histogram: colour bins per axis over ``PALETTE_CHROMA_RANGE`` of ln R/G and ln B/G
#: around the frame's median colour (the outer bins take everything beyond).
PALETTE_CHROMA_BINS = 5
PALETTE_CHROMA_RANGE = 1.5
#: Pixels darker than this many stops under the median carry noise, not colour.
_PALETTE_FLOOR_STOPS = 6.0
PALETTE_LEVELS = 15  # one hex digit per bin


def palette(rgb: np.ndarray) -> str | None:
    """The colours a frame shows, in a few hex digits (for grouping the views of one place).

    A histogram of the colours of the pixels that are neither clipped nor deep
    in the shadows: ``(ln R/G, ln B/G)`` less the frame's median colour, in
    ``5 x 5`` bins of ``+-1.5`` (so neither the white balance the camera chose
    nor the exposure counts, only the spread of colours around the median).
    Each bin's share is square-rooted (the Hellinger distance of two palettes
    is then the Euclidean distance of their digits over sqrt 2) and written
    as one hex digit, ``0``-``f``. A histogram of tones was tried beside it and
    left out: the views of one place differ more in tone than two places do.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear RGB, 1.0 = white (the analysis proxy).

    Returns
    -------
    str or None
        25 hex digits; None when fewer than 100 pixels qualify.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image of at least 8x8.
    """
    rgb = check_rgb(rgb)
    sub = subsample(rgb, 40_000).reshape(-1, 3).astype(np.float64)
    luma = sub @ np.array([0.2126, 0.7152, 0.0722])
    median = float(np.median(luma))
    if not median > 0:
        return None
    floor = median * 2.0**-_PALETTE_FLOOR_STOPS
    ok = (brightest_channel(sub) < 0.98) & (darkest_channel(sub) > floor)
    if ok.sum() < 100:
        return None
    px = sub[ok]
    c1, c2 = np.log(px[:, 0] / px[:, 1]), np.log(px[:, 2] / px[:, 1])
    c1 -= np.median(c1)
    c2 -= np.median(c2)
    n, r = PALETTE_CHROMA_BINS, PALETTE_CHROMA_RANGE
    i1 = np.clip(((c1 + r) / (2 * r) * n).astype(int), 0, n - 1)
    i2 = np.clip(((c2 + r) / (2 * r) * n).astype(int), 0, n - 1)
    shares = np.bincount(i1 * n + i2, minlength=n * n) / len(px)
    digits = np.rint(np.sqrt(shares) * PALETTE_LEVELS).astype(int)
    return "".join(f"{d:x}" for d in digits)


def palette_distance(a: str, b: str) -> float:
    """Hellinger distance of two palettes (0: the same colours; 1: no colour in common).

    Raises
    ------
    ValueError
        If the two are not palettes (25 hex digits each).
    """
    if len(a) != len(b) or len(a) != PALETTE_CHROMA_BINS**2:
        raise ValueError(f"not two palettes of {PALETTE_CHROMA_BINS**2} hex digits: {a!r}, {b!r}")
    try:
        da = np.array([int(c, 16) for c in a], dtype=np.float64) / PALETTE_LEVELS
        db = np.array([int(c, 16) for c in b], dtype=np.float64) / PALETTE_LEVELS
    except ValueError:
        raise ValueError(f"a palette is hex digits: {a!r}, {b!r}") from None
    return float(np.linalg.norm(da - db)) / np.sqrt(2.0)


#: A border bar: an edge row (column) of which at least this share of the pixels is the bar's colour (within
#: :data:`BAR_CODES` sRGB code values in every channel; a credit line of text inside the bar leaves most of its row
#: the bar's) ...
BAR_ROW_SHARE = 0.75
#: ... one row of the pair all but a few pixels of it (a flat fill; a credit may run through every row of the other) ...
BAR_FLAT_SHARE = 0.98
#: ... and the two other edges of the picture between the bars under this share of the bar's colour (a packshot's
#: white sweep surrounds its subject: its backdrop, not a pad).
BAR_SIDE_SHARE = 0.5
#: Where the bar meets the picture a JPEG's colour, stored at half resolution in blocks of 16 pixels, smears the
#: picture's into the bar's last rows and the bar's into the picture's first (a sky's blue: white to 255, 255, 241):
#: rows within this many code values of the bar's colour are counted in the bar, so no crop keeps that whitish line.
BAR_BLEED_CODES = 16
#: The picture begins at this many rows in a row that are not the bar's (a rule or a logo's line in a bar is thinner).
BAR_PICTURE_ROWS = 4
#: How far from the bar's colour a pixel of it may be (sRGB code values): a JPEG's ringing on a flat fill.
BAR_CODES = 4
#: A bar is at least this share of the frame's height (width) thick: thinner, a frame line, not a pad.
BAR_MIN_SHARE = 0.01


def border_bars(rgb: np.ndarray) -> tuple[float, float, float, float] | None:
    """The flat bars a picture was padded with to fit a frame of another aspect (a listing portal's letterbox, white or
    black above and below; a pillarbox left and right), as shares of the width and height: ``(left, top, right,
    bottom)``; None without such a pair.

    Bars come in pairs on opposite edges, of one flat colour (a credit line of text may sit in one); the other two
    edges of the picture between them are not of that colour (a packshot's white sweep surrounds its subject on
    every side, and is its backdrop, not a pad). Read on the proxy: its rows are a few full-resolution pixels each,
    and the bars are taken one proxy row thicker than read (the row where the bar blends into the picture: a crop
    inside them may lose a row of picture, never keep a row of bar).
    """
    rgb = check_rgb(rgb)
    h, w = rgb.shape[:2]

    def codes(part: np.ndarray) -> np.ndarray:
        return np.round(np.clip(linear_to_srgb(np.clip(part, 0.0, 1.0)), 0.0, 1.0) * 255.0).astype(np.int16)

    def share_of(lines: np.ndarray, colour: np.ndarray, codes_off: int = BAR_CODES) -> np.ndarray:
        return (np.abs(lines - colour).max(axis=-1) <= codes_off).mean(axis=-1)

    def run(lines: np.ndarray, colour: np.ndarray) -> tuple[int, float]:
        """How many of ``lines`` (rows as (n, length, 3), outermost first) are bar rows of ``colour`` (the bar's colour
        as a JPEG bleeds its first rows of picture into it, :data:`BAR_BLEED_CODES`), and the largest share of the
        flat colour in one of them."""
        share = share_of(lines, colour)
        picture = share_of(lines, colour, BAR_BLEED_CODES) < BAR_ROW_SHARE
        # The picture begins where BAR_PICTURE_ROWS rows in a row are not the bar's: a thin rule or a logo's line
        # in the bar is shorter.
        run_of = np.convolve(picture.astype(np.int32), np.ones(BAR_PICTURE_ROWS, dtype=np.int32), "valid")
        starts = np.flatnonzero(run_of == BAR_PICTURE_ROWS)
        if not starts.size or not starts[0]:
            return 0, 0.0
        return int(starts[0]), float(share[:starts[0]].max())

    def pair(first: np.ndarray, second: np.ndarray, size: int) -> tuple[int, int, np.ndarray] | None:
        """The bars' thickness at two opposite edges (``first``, ``second``: their rows from the edge inward, as far
        as a bar may reach, linear) and their colour, or None. Each edge's outermost row is read first: a
        photograph's is no flat fill, and most pictures are done with there."""
        edge_a, edge_b = codes(first[:1]), codes(second[:1])
        colour = np.median(edge_a[0], axis=0)
        if (np.abs(np.median(edge_b[0], axis=0) - colour).max() > BAR_CODES
                or min(share_of(edge_a, colour)[0], share_of(edge_b, colour)[0]) < BAR_ROW_SHARE):
            return None
        (a, flat_a), (b, flat_b) = run(codes(first), colour), run(codes(second), colour)
        if (min(a, b) < max(2, BAR_MIN_SHARE * size) or a + b > 0.5 * size
                or max(flat_a, flat_b) < BAR_FLAT_SHARE):
            return None
        return a, b, colour

    def sides_free(line: np.ndarray, colour: np.ndarray) -> bool:
        return bool(share_of(codes(line), colour) < BAR_SIDE_SHARE)

    reach_h, reach_w = h // 4 + 1, w // 4 + 1  # a pair of bars holds at most half the frame
    rows = pair(rgb[:reach_h], rgb[::-1][:reach_h], h)
    if rows is not None:
        top, bottom, colour = rows
        if sides_free(rgb[top:h - bottom, 0], colour) and sides_free(rgb[top:h - bottom, -1], colour):
            return 0.0, (top + 1) / h, 0.0, (bottom + 1) / h
    columns = rgb.transpose(1, 0, 2)
    cols = pair(columns[:reach_w], columns[::-1][:reach_w], w)
    if cols is not None:
        left, right, colour = cols
        if sides_free(rgb[0, left:w - right], colour) and sides_free(rgb[-1, left:w - right], colour):
            return (left + 1) / w, 0.0, (right + 1) / w, 0.0
    return None


def content_measure(encoded_small: np.ndarray, rgb: np.ndarray | None = None) -> ContentMeasure:
    """The record's content group from sRGB-encoded luma at :data:`WORK_LONG_EDGE` (and the proxy, for the salient
    object and the palette).

    Raises
    ------
    ValueError
        If ``encoded_small`` is not a 2-D image of at least 8x8, or ``rgb`` not an RGB image.
    """
    x, y = saliency_centre(encoded_small)
    return ContentMeasure(phash=phash_of_encoded(encoded_small), saliency_x=x, saliency_y=y,
                          saliency_map=None if rgb is None else encode_saliency_map(salient_object_map(rgb)),
                          palette=None if rgb is None else palette(rgb),
                          border_bars=None if rgb is None else _listed(border_bars(rgb)))


def _listed(bars: tuple[float, float, float, float] | None) -> list[float] | None:
    return None if bars is None else [float(v) for v in bars]
