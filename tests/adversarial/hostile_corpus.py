"""Build a shoot of hostile inputs from real files: ``python tests/adversarial/hostile_corpus.py DEST``.

Every case is made from the shared test data (real photos and camera RAWs) or
generated: names that collide once normalised or transliterated, names with
newlines, bidi overrides, 253 bytes of CJK or bytes that are not UTF-8;
zero-byte, truncated, garbage and metadata-only files; images of 1x1 to 7x7
pixels and thin strips; headers that declare 10 gigapixels; a real
169-megapixel PNG of a few MB; symbolic-link loops, links walked twice, links
out of the shoot, broken links, a named pipe. Nothing is committed: the corpus
is built in a temporary folder when the tests run (``POSTPROD_TESTDATA``
names the shared data).

:func:`build_corpus` returns, for every entry it made, what a run must do
with it: ``ok``, ``failed`` (with words the error must contain),
``skipped`` (with words of the reason) or ``duplicate``.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    """One entry of the corpus and what a run must make of it."""

    source_path: str  # relative to the shoot, as the manifest or the skipped list shows it
    kind: str  # the kind of bad input, for the report
    outcome: str  # ok | failed | skipped | duplicate
    says: tuple[str, ...] = ()  # words the error or skip reason must contain (lowercase)


@dataclass
class Corpus:
    shoot: Path
    outside: Path
    cases: list[Case] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted({c.kind for c in self.cases})


def _png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A PNG of ``width`` x ``height`` RGB from raw filtered rows (default: every row a grey ramp)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(rows, 6) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _big_png(side: int) -> bytes:
    """A real ``side`` x ``side`` photo-like PNG (soft gradients and bands) that compresses to a few MB."""
    x = np.linspace(0, 1, side, dtype=np.float32)
    comp = zlib.compressobj(6)
    parts = []
    for y0 in range(0, side, 256):
        ys = np.arange(y0, min(side, y0 + 256), dtype=np.float32)[:, None] / side
        r = 40 + 180 * x[None, :] * (0.6 + 0.4 * ys)
        g = 30 + 150 * ys * np.ones_like(x)[None, :]
        b = 60 + 100 * (((np.floor(x * 12)[None, :] + np.floor(ys * 12)) % 2) * 0.8 + 0.1)
        band = np.stack([r, g, b], axis=2).astype(np.uint8)
        rows = np.concatenate([np.zeros((band.shape[0], 1), np.uint8), band.reshape(band.shape[0], -1)], axis=1)
        parts.append(comp.compress(rows.tobytes()))
    parts.append(comp.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def _jpeg_header(width: int, height: int) -> bytes:
    """A JPEG whose frame header declares ``width`` x ``height`` and that ends right after it."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof + b"\xff\xd9"


def _small_photo(src: Path, size: int = 480) -> bytes:
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        return buf.getvalue()


def build_corpus(dest: Path, data: Path, big_side: int = 13000) -> Corpus:
    """Write the hostile shoot under ``dest/shoot`` (and the files it links to under ``dest/outside``).

    Parameters
    ----------
    dest : Path
        An empty folder.
    data : Path
        The shared test data (``exposure/``, ``faces/``, ``raw/``).
    big_side : int
        Side of the large PNG (13,000: 169 megapixels, as in issue 11).

    Returns
    -------
    Corpus
        The shoot folder and every case with its expected outcome.

    Raises
    ------
    FileNotFoundError
        If the shared data lacks the photos or RAWs the cases are made from.
    """
    shoot, outside = dest / "shoot", dest / "outside"
    shoot.mkdir(parents=True)
    outside.mkdir()
    photos = sorted(p for p in (data / "exposure").iterdir() if p.suffix.lower() == ".jpg")
    faces = sorted((data / "faces" / "pascal_voc").glob("*.jpg"))
    crw = data / "raw" / "Canon_PowerShot_G2_CRW_0304.CRW"
    if len(photos) < 8 or not faces or not crw.is_file():
        raise FileNotFoundError(f"shared test data incomplete under {data}")
    corpus = Corpus(shoot, outside)
    small = [_small_photo(p) for p in photos[:8]] + [_small_photo(p) for p in faces[:4]]

    def put(rel: str | bytes, content: bytes, kind: str, outcome: str, *says: str) -> None:
        path = os.path.join(os.fsencode(shoot), rel if isinstance(rel, bytes) else os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        shown = rel.decode("utf-8", "backslashreplace") if isinstance(rel, bytes) else rel
        corpus.cases.append(Case(shown, kind, outcome, says))

    def photo() -> bytes:
        # Bytes after the JPEG's end marker make each copy a distinct file that decodes the same.
        i = next(n)
        return small[i % len(small)] + f"postprod-corpus-{i}".encode()

    n = iter(range(10_000))

    # --- names: distinct sources whose names collide once normalised, cut or transliterated
    first = photo()
    put("日本.jpg", first, "cjk name", "ok")
    put("写真.jpg", photo(), "cjk name", "ok")
    put("Ärger.jpg", photo(), "accented name", "ok")
    put("Arger.jpg", photo(), "accented name", "ok")
    put(unicodedata.normalize("NFC", "café.jpg"), photo(), "nfc/nfd names", "ok")
    put(unicodedata.normalize("NFD", "café.jpg"), photo(), "nfc/nfd names", "ok")
    put("IMG_0001.jpg", photo(), "names differing in case", "ok")
    put("img_0001.JPG", photo(), "names differing in case", "ok")
    put("new\nline.jpg", photo(), "newline in name", "ok")
    put("tab\tand\x1bescape.jpg", photo(), "control characters in name", "ok")
    put("\u202egpj.exe.jpg", photo(), "bidi override in name", "ok")
    put("長" * 83 + ".jpg", photo(), "253-byte name", "ok")
    put("長" * 82 + "x.jpg", photo(), "253-byte name", "ok")
    put("CON.jpg", photo(), "windows device name", "ok")
    put("{stem}%s.jpg", photo(), "template characters in name", "ok")
    put("a__b.jpg", photo(), "ambiguous folder join", "ok")
    put("a/b.jpg", photo(), "ambiguous folder join", "ok")
    put("d" * 250 + "/deep.jpg", photo(), "250-byte folder name", "ok")
    put(b"latin1-caf\xe9.jpg", photo(), "name not utf-8", "skipped", "utf-8")
    # --- contents
    put("zero.jpg", b"", "zero-byte file", "failed", "empty")
    put("half.jpg", small[3][: len(small[3]) // 2], "truncated jpeg", "failed", "truncated")
    png = _png(64, 64, (b"\x00" + bytes(range(192))) * 64)
    put("cut.png", png[: len(png) * 2 // 3], "truncated png", "failed", "truncated")
    raw = crw.read_bytes()
    put("cut_0.1pct.CRW", raw[: int(len(raw) * 0.999)], "truncated crw", "failed", "truncated")
    put("cut_half.CRW", raw[: len(raw) // 2], "truncated crw", "failed", "truncated")
    put("garbage.jpg", os.urandom(4096), "garbage bytes", "failed", "not an image")
    put("text.CR2", b"this is not a raw file\n" * 20, "text named as raw", "failed")
    for side in (1, 2, 3, 5, 7):
        img = Image.fromarray(np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8))
        buf = io.BytesIO()
        img.save(buf, "PNG" if side % 2 else "JPEG")
        put(f"tiny_{side}x{side}.{'png' if side % 2 else 'jpg'}", buf.getvalue(), "tiny image", "failed", "too small")
    strip = Image.fromarray(np.random.default_rng(9).integers(0, 255, (6, 3000, 3), dtype=np.uint8))
    buf = io.BytesIO()
    strip.save(buf, "PNG")
    put("strip_3000x6.png", buf.getvalue(), "thin strip", "failed", "too small")
    eight = Image.fromarray(np.random.default_rng(8).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    buf = io.BytesIO()
    eight.save(buf, "PNG")
    put("smallest_8x8.png", buf.getvalue(), "tiny image", "ok")
    put("black.png", _png(64, 64, (b"\x00" + bytes(192)) * 64), "constant image", "failed", "constant")
    put("header_10gpx.png", _png(100_000, 100_000), "huge-dimension header", "failed", "limit")
    put("header_4gpx.jpg", _jpeg_header(65_000, 65_000), "huge-dimension header", "failed", "limit")
    put("big_169mpx.png", _big_png(big_side), "169-megapixel png", "ok")
    put("日本_copy.jpg", first, "duplicate content", "duplicate")  # sorts after 日本.jpg, which is kept
    # --- folders and links
    put(".hidden/secret.jpg", photo(), "hidden folder", "skipped", "hidden")
    corpus.cases.pop()  # the folder is what is skipped
    corpus.cases.append(Case(".hidden/", "hidden folder", "skipped", ("hidden",)))
    put("sub/inside.jpg", photo(), "symlinked folder", "ok")
    os.symlink("sub", shoot / "link_to_sub")
    corpus.cases.append(Case("link_to_sub/", "symlinked folder", "skipped", ("already walked",)))
    os.symlink("..", shoot / "sub" / "loop")
    corpus.cases.append(Case("sub/loop/", "symlink loop", "skipped", ("already walked",)))
    os.symlink("self", shoot / "self")
    corpus.cases.append(Case("self", "symlink loop", "skipped", ("loop",)))
    (outside / "client_b.jpg").write_bytes(small[5])
    (outside / "folder").mkdir()
    (outside / "folder" / "x.jpg").write_bytes(small[6])
    os.symlink(outside / "client_b.jpg", shoot / "escape.jpg")
    corpus.cases.append(Case("escape.jpg", "symlink out of the shoot", "skipped", ("outside the shoot",)))
    os.symlink(outside / "folder", shoot / "escape_dir")
    corpus.cases.append(Case("escape_dir/", "symlink out of the shoot", "skipped", ("outside the shoot",)))
    os.symlink(shoot / "nope.jpg", shoot / "broken.jpg")
    corpus.cases.append(Case("broken.jpg", "broken symlink", "skipped", ("broken",)))
    os.mkfifo(shoot / "pipe.jpg")
    corpus.cases.append(Case("pipe.jpg", "named pipe", "skipped", ("not a regular file",)))
    return corpus


def main(argv: list[str]) -> int:  # pragma: no cover - a helper for building the corpus by hand
    if len(argv) != 2:
        print("usage: python tests/adversarial/hostile_corpus.py DEST (an empty or new folder)", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2]
    data = Path(os.environ.get("POSTPROD_TESTDATA", root.parent / "shared" / "data"))
    corpus = build_corpus(Path(argv[1]), data)
    print(f"{len(corpus.cases)} entries of {len(corpus.kinds)} kinds in {corpus.shoot}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
