"""Walk a shoot folder: recognise images by content, hash them, find duplicates.

Formats are recognised from the file's first bytes; the extension is only a
hint where the content is ambiguous (the many TIFF-based RAW formats). Files
LibRaw might still read (Kodak KDC, headerless RAW) are passed on as
``unknown`` and the decode stage decides.
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.kernel.records import SourceKind, SourceTask
from pipeline.kernel.sidecars import (
    NOT_PICKED_REASON,
    PHOTOGRAPHER_PICKS,
    PHOTOGRAPHER_REJECTS,
    REJECTED_REASON,
    Culling,
    camera_rating,
    embedded_packet,
    is_pick,
    packet_culling,
    packet_orientation,
    photographer_xmp,
    valid_picks,
)

# Extensions LibRaw reads (a hint for TIFF-based containers, and for naming).
RAW_EXTENSIONS = frozenset(
    "3fr ari arw bay braw cap cr2 cr3 crw cs1 dc2 dcr dng drf eip erf fff gpr iiq k25 kdc mdc mef mos mrw "
    "nef nrw orf ori pef ptx pxn qtk r3d raf raw rw2 rwl rwz sr2 srf srw sti x3f".split()
)
RASTER_EXTENSIONS = frozenset(
    "jpg jpeg jpe tif tiff png webp heic heif avif jxl bmp gif jp2 jpf jpx j2k j2c pbm pgm ppm pnm pcx tga".split()
)
# Files that travel beside images and are not images themselves.
SIDECAR_EXTENSIONS = frozenset("xmp thm pp3 dop acr on1 aae lrv cos arp".split())
# Video clips: a videographer's footage in a shoot, a phone's Live Photo beside its still (IMG_0001.HEIC and
# IMG_0001.MOV). postprod develops stills: they are skipped and counted, not failed.
VIDEO_EXTENSIONS = frozenset("mov mp4 m4v avi mts m2ts 3gp 3g2 mkv webm wmv mpg mpeg mxf insv".split())
# Files an operating system leaves in any folder it shows (Windows' thumbnail caches and folder settings, the
# Finder's custom-icon file): skipped as hidden files are.
SYSTEM_FILES = frozenset(("thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", "icon\r"))

#: Files hashed per batch of the scan's threads (the calls in flight at once).
SCAN_BATCH = 256

#: What a camera writes beside its RAW when it shoots RAW+JPEG (or RAW+HEIF): its own development of the frame.
PAIR_FORMATS = {"jpeg": "JPEG", "heic": "HEIF"}
#: What a run does with the camera's JPEG of a RAW+JPEG pair (``--raw-jpeg-pairs``): ``raw`` develops the RAW
#: alone, ``both`` develops each file on its own.
RAW_JPEG_PAIRS = ("raw", "both")

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"}
_TIFF_DNG_VERSION = 0xC612


def _tiff_has_tag(head: bytes, tag: int) -> bool:
    """Whether IFD0 of a TIFF (whose first KiB is ``head``) holds ``tag``."""
    endian = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(endian + "I", head, 4)
        (count,) = struct.unpack_from(endian + "H", head, offset)
        for i in range(count):
            (t,) = struct.unpack_from(endian + "H", head, offset + 2 + 12 * i)
            if t == tag:
                return True
    except struct.error:
        return False
    return False


def sniff_format(head: bytes, suffix: str) -> tuple[str, SourceKind]:
    """Recognise a file's format from its first bytes (at least 64 KiB advised).

    Returns
    -------
    (format, kind)
        ``format`` is a short lowercase name (``"jpeg"``, ``"cr2"``, ...);
        ``kind`` is raw, raster, or unknown (left for LibRaw to try).
    """
    ext = suffix.lower().lstrip(".")
    if not head:
        return "empty", SourceKind.UNKNOWN
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg", SourceKind.RASTER
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png", SourceKind.RASTER
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", SourceKind.RASTER
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "jxl", SourceKind.RASTER  # JPEG XL: a bare codestream, or in its ISO-BMFF container
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "cr3", SourceKind.RAW
        if brand in _HEIF_BRANDS:
            return "heic", SourceKind.RASTER
        if brand in {b"avif", b"avis"}:
            return "avif", SourceKind.RASTER
    if head[6:14] == b"HEAPCCDR":
        return "crw", SourceKind.RAW
    if head[:15] == b"FUJIFILMCCD-RAW":
        return "raf", SourceKind.RAW
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "orf", SourceKind.RAW
    if head[:4] == b"IIU\x00":
        return "rw2", SourceKind.RAW
    if head[:4] == b"\x00MRM":
        return "mrw", SourceKind.RAW
    if head[:4] == b"FOVb":
        return "x3f", SourceKind.RAW
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        if _tiff_has_tag(head, _TIFF_DNG_VERSION):
            return "dng", SourceKind.RAW
        if head[8:10] == b"CR":
            return "cr2", SourceKind.RAW
        if ext in RAW_EXTENSIONS:
            return ext, SourceKind.RAW
        return "tiff", SourceKind.RASTER
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        return "tiff", SourceKind.RASTER  # BigTIFF (64-bit offsets: scans and stitched files past 4 GB)
    if head[:2] == b"BM":
        return "bmp", SourceKind.RASTER
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", SourceKind.RASTER
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "jp2", SourceKind.RASTER  # JPEG 2000: its JP2 signature box, or a bare codestream (SOC, SIZ)
    if head[:1] == b"P" and head[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6") and head[2:3].isspace():
        return "pnm", SourceKind.RASTER  # Netpbm: PBM, PGM, PPM, plain or raw (not PFM's float "PF")
    if len(head) >= 128 and head[0] == 0x0A and head[1] in (0, 2, 3, 4, 5) and head[2] in (0, 1) \
            and head[3] in (1, 2, 4, 8):
        return "pcx", SourceKind.RASTER  # ZSoft PCX: manufacturer 10, version, encoding, bits per plane
    if ext in ("tga", "icb", "vda", "vst") and len(head) >= 18 and head[1] in (0, 1) \
            and head[2] in (1, 2, 3, 9, 10, 11):
        return "tga", SourceKind.RASTER  # Truevision TGA has no magic: its extension and a plausible header
    # Unknown magic: LibRaw recognises many formats by size or maker signature.
    return (ext or "unknown"), SourceKind.UNKNOWN


def hash_file(path: Path | str, chunk: int = 1 << 20) -> tuple[str, bytes]:
    """SHA-256 of a file and its first 64 KiB (for :func:`sniff_format`)."""
    h = hashlib.sha256()
    head = b""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            if not head:
                head = block[:65536]
            h.update(block)
    return h.hexdigest(), head


@dataclass
class Skipped:
    source_path: str
    reason: str


@dataclass
class Duplicate:
    source_path: str
    content_hash: str
    duplicate_of: str
    task: SourceTask


@dataclass
class Shoot:
    """What a shoot folder holds, ready to process."""

    root: Path
    tasks: list[SourceTask] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # The RAW of each RAW+JPEG pair whose JPEG was skipped -> the task that JPEG becomes if its RAW fails
    # (:meth:`stand_in`): the RAW's place and export name.
    pair_tasks: dict[str, SourceTask] = field(default_factory=dict)
    # The RAW of each pair whose JPEG was developed in its place -> that JPEG.
    stand_ins: dict[str, str] = field(default_factory=dict)
    # The photographer's culling of the files to process whose XMP (a sidecar, or their own) states one.
    culling: dict[str, Culling] = field(default_factory=dict)
    # How many frames the photographer picked (a pick flag in their XMP), before ``picks`` left any out.
    picked: int = 0

    @property
    def pair_jpegs(self) -> dict[str, str]:
        """The RAW of each RAW+JPEG pair whose JPEG is skipped -> that JPEG (paths relative to the shoot)."""
        return {raw: task.source_path for raw, task in self.pair_tasks.items()}

    def stand_in(self, raw: str) -> SourceTask | None:
        """The camera JPEG of the RAW+JPEG pair of ``raw`` (a RAW that failed), to develop in the RAW's place;
        None when ``raw`` has no skipped JPEG beside it.

        A frame whose RAW cannot be read is still delivered, from the camera's own development of it, as a
        production would rather ship the JPEG than lose the frame: the JPEG leaves :attr:`skipped` for
        :attr:`tasks`, with the RAW's place in the shoot and its export name (``{seq}``, the stem), so the
        delivery is named as the RAW's would have been.
        """
        task = self.pair_tasks.pop(raw, None)
        if task is None:
            return None
        shown = _shown(task.source_path)
        self.skipped = [s for s in self.skipped if s.source_path != shown]
        at = next((i for i, t in enumerate(self.tasks) if t.source_path == raw), len(self.tasks) - 1)
        self.tasks.insert(at + 1, task)  # beside its RAW: the shoot's order is the plan's (runs of a scene)
        self.stand_ins[raw] = task.source_path
        return task


def pair_skip_reason(fmt: str) -> str:
    """The skip reason of the camera's JPEG (``fmt`` ``jpeg``) or HEIF (``heic``) of a RAW+JPEG pair: one text
    for every such file, so the summary counts them in one line."""
    label = PAIR_FORMATS[fmt]
    return (f"camera {label} of a RAW+{label} pair (its RAW is developed, this file only if the RAW fails; "
            "--raw-jpeg-pairs both develops both)")


def raw_jpeg_pairs(paths: list[str], facts: list[tuple[str, SourceKind]]) -> dict[int, int]:
    """The camera JPEGs (or HEIFs) that sit beside a RAW of the same name: index of each -> index of its RAW.

    A camera shooting RAW+JPEG writes ``IMG_0002.CR2`` and ``IMG_0002.JPG`` into one folder: one frame, two
    developments of it, its own and the one the chart asks for. The pair is one folder and one name but for the
    extension (case aside: ``img_0002.jpg`` beside ``IMG_0002.CR2``). The RAW is a file LibRaw reads by its
    content, or by its extension where its content is ambiguous (a Kodak KDC); the JPEG is a JPEG or HEIF by its
    content. A TIFF or PNG of the same name is someone's export, not the camera's, and is no pair.

    Parameters
    ----------
    paths : list of str
        Paths relative to the shoot, ``/``-separated.
    facts : list of (format, kind)
        Each file's :func:`sniff_format` answer, in the order of ``paths``.
    """
    def key(path: str) -> tuple[str, str]:
        folder, _, name = path.rpartition("/")
        return folder, os.path.splitext(name)[0].casefold()

    raws: dict[tuple[str, str], int] = {}
    for i, (path, (_, kind)) in enumerate(zip(paths, facts)):
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if kind is SourceKind.RAW or (kind is SourceKind.UNKNOWN and ext in RAW_EXTENSIONS):
            raws.setdefault(key(path), i)
    return {i: raws[key(path)] for i, (path, (fmt, kind)) in enumerate(zip(paths, facts))
            if kind is SourceKind.RASTER and fmt in PAIR_FORMATS and key(path) in raws}


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode kept undecodable bytes as surrogates
        return False
    return True


def _shown(rel: str) -> str:
    """A relative path as text that can be written anywhere (undecodable bytes as ``\\xff``)."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _walk(root: Path, skipped: list[Skipped], follow_external_symlinks: bool = False) -> list[str]:
    """Every file to process under ``root``, as its path relative to it, in path order; what is left out goes
    to ``skipped``.

    Real folders are walked first; then folders reached through symbolic
    links, each real folder once, so a link back up the tree (a loop) or a
    second link to a folder is counted, not followed again. A link whose
    target lies outside ``root`` is skipped and counted unless
    ``follow_external_symlinks`` (a trusted local shoot that links to a
    card or a NAS): an uploaded shoot must not pull in files the service can
    read elsewhere.

    The files found are kept as text, not :class:`~pathlib.Path`: the driver
    holds one an image for the whole run, and a ``Path`` costs four more
    objects (its parts, each interned) that outlived the scan as scattered
    garbage in Python's arenas (RESULTS.md, target 5).
    """
    found: list[str] = []
    walked: dict[Path, str] = {}
    folders: list[tuple[Path, str]] = [(root, "")]
    links: list[tuple[Path, str, Path]] = []

    def skip(rel: str, reason: str) -> None:
        skipped.append(Skipped(_shown(rel), reason))

    def walk_folder(folder: Path, rel_dir: str) -> None:
        walked[Path(os.path.realpath(folder))] = rel_dir
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skip(rel_dir + "/", f"folder cannot be read ({exc.strerror})")
            return
        subfolders = []
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not _utf8(name):
                skip(rel, "file name is not valid UTF-8: rename it (e.g. with convmv) to include it")
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                skip(rel, f"cannot be read ({exc.strerror})")
                continue
            if name.startswith("."):
                skip(rel + "/" if is_dir else rel, "hidden folder" if is_dir else "hidden file")
            elif is_link:
                link(Path(entry.path), rel)
            elif is_dir:
                subfolders.append((Path(entry.path), rel))
            else:  # no Path for a file: pathlib interns each part, and Python's table of them never shrinks
                add_file(rel, entry.is_file(follow_symlinks=False))
        folders.extend(reversed(subfolders))  # depth-first, in name order

    def add_file(rel: str, regular: bool) -> None:
        suffix = os.path.splitext(rel)[1].lower()
        if os.path.basename(rel).lower() in SYSTEM_FILES:
            skip(rel, "system file")
        elif suffix.lstrip(".") in SIDECAR_EXTENSIONS:
            skip(rel, f"sidecar ({suffix})")
        elif suffix.lstrip(".") in VIDEO_EXTENSIONS:
            skip(rel, f"video clip ({suffix})")
        elif not regular:
            skip(rel, "not a regular file")
        else:
            found.append(rel)

    def link(path: Path, rel: str) -> None:
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            skip(rel, "broken symbolic link")
            return
        except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a loop, 3.13 OSError (ELOOP)
            skip(rel, "symbolic link loop")
            return
        if not (target == root or target.is_relative_to(root)) and not follow_external_symlinks:
            kind = "folder" if target.is_dir() else "file"
            skip(rel + "/" if kind == "folder" else rel,
                 f"symbolic link to a {kind} outside the shoot folder (--follow-external-symlinks includes it)")
        elif target.is_dir():
            links.append((path, rel, target))
        else:
            add_file(rel, target.is_file())

    while folders or links:
        while folders:
            walk_folder(*folders.pop())
        if not links:
            break
        path, rel, target = links.pop(0)
        if target in walked:
            where = f"{walked[target]}/" if walked[target] else "the shoot folder itself"
            skip(rel + "/", f"symbolic link to a folder already walked ({where})")
        else:
            folders.append((path, rel))
    found.sort()
    return found


def scan_shoot(
    root: Path | str,
    threads: int | None = None,
    on_file: Callable[[Path], None] | None = None,
    follow_external_symlinks: bool = False,
    pairs: str = "raw",
    rejects: str = "skip",
    picks: str = "all",
) -> Shoot:
    """Walk ``root`` recursively and describe what is to be processed.

    Hidden files and folders, system files (Thumbs.db, desktop.ini), sidecars (XMP, THM, PP3, ...), video
    clips, names that are
    not UTF-8, broken links, link loops and links outside the shoot (unless
    ``follow_external_symlinks``) are skipped and counted with their reason;
    a folder reached twice is walked once. Identical files (same SHA-256) are
    processed once: the first in path order is kept, the others are reported
    as duplicates of it. With ``pairs`` ``"raw"`` (:data:`RAW_JPEG_PAIRS`), the
    camera's JPEG (or HEIF) of a RAW+JPEG pair (:func:`raw_jpeg_pairs`) is
    skipped and counted: the RAW is the frame's one development and delivery,
    as Lightroom imports such a pair as one photo; ``"both"`` processes each.
    The photographer's culling in the shoot's XMP sidecars, or in a file's own
    metadata (its XMP, or the stars the camera wrote: :func:`file_culling`), is read
    (:mod:`pipeline.kernel.sidecars`; a RAW takes its skipped JPEG's where it has none
    of its own); with ``rejects`` ``"skip"``
    (:data:`~pipeline.kernel.sidecars.PHOTOGRAPHER_REJECTS`) a frame rejected
    (a culling tool's reject flag, :func:`~pipeline.kernel.sidecars.culling_flag`,
    or stars of -1) is skipped and counted, keeping its number and export name
    for the day it is taken back; ``"process"`` develops it. With ``picks``
    ``"only"`` (:data:`~pipeline.kernel.sidecars.PHOTOGRAPHER_PICKS`), where the
    photographer picked frames (a pick flag: Lightroom's P, Photo Mechanic's
    tag), the frames not picked are skipped and counted the same way; with a
    number of stars, the frames rated fewer (and not picked) are, with
    ``label:NAME`` those not so labelled; a shoot with no pick is developed
    whole (:attr:`Shoot.picked` says how many).

    Hashing is the driver's one per-byte job: ``threads`` (default one per
    CPU, at most 16) hash files side by side.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not a folder.
    ValueError
        If ``pairs`` is not one of :data:`RAW_JPEG_PAIRS`, or ``rejects`` not one of
        :data:`~pipeline.kernel.sidecars.PHOTOGRAPHER_REJECTS`.
    """
    if pairs not in RAW_JPEG_PAIRS:
        raise ValueError(f"pairs must be one of {', '.join(RAW_JPEG_PAIRS)}, got {pairs!r}")
    if rejects not in PHOTOGRAPHER_REJECTS:
        raise ValueError(f"rejects must be one of {', '.join(PHOTOGRAPHER_REJECTS)}, got {rejects!r}")
    if not valid_picks(picks):
        raise ValueError(f"picks must be one of {', '.join(PHOTOGRAPHER_PICKS)} or label:NAME, got {picks!r}")
    if threads is None:
        threads = min(16, os.cpu_count() or 1)
    root = Path(root).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"shoot folder not found: {root}")
    shoot = Shoot(root=root)
    found = _walk(root, shoot.skipped, follow_external_symlinks)
    top = str(root)

    embedded: dict[str, Culling] = {}  # the culling in files' own metadata (a JPEG's, a DNG's, a camera's rating)
    embedded_turns: dict[str, int] = {}  # a DNG's turn in its own XMP (where Lightroom writes it)

    def describe(rel: str) -> tuple[str, int, str, SourceKind]:
        location = os.path.join(top, rel)
        digest, head = hash_file(location)
        fmt, kind = sniff_format(head, os.path.splitext(rel)[1])
        packet = embedded_packet(location, fmt, head)
        if (culling := own_culling(location, rel, fmt, head, packet)) is not None:
            embedded[rel] = culling
        if packet is not None and kind is SourceKind.RAW and (turn := packet_orientation(packet, rel)) is not None:
            embedded_turns[rel] = turn
        if on_file:
            on_file(Path(location))
        return digest, os.stat(location).st_size, fmt, kind

    # hashlib releases the GIL on large buffers: threads overlap disk and hashing. A batch at a time:
    # Executor.map submits every call at once, a future (with its lock and condition) an image, about
    # 1 KB each, that left 9 MB of Python's arenas held at 10,000 images.
    facts: list[tuple[str, int, str, SourceKind]] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(found), SCAN_BATCH):
            facts += pool.map(describe, found[start : start + SCAN_BATCH])
    # Each task is made once, numbered, after the duplicates are known: the driver keeps them to the end of
    # the run, and a first copy per image (renumbered with dataclasses.replace) left its garbage among them.
    paired = raw_jpeg_pairs(found, [(fmt, kind) for _, _, fmt, kind in facts]) if pairs == "raw" else {}
    first_by_hash: dict[str, str] = {}
    kept: list[int] = []
    for i, (rel, (digest, size, fmt, kind)) in enumerate(zip(found, facts)):
        if i in paired:
            shoot.skipped.append(Skipped(_shown(rel), pair_skip_reason(fmt)))
            continue
        original = first_by_hash.get(digest)
        if original is None:
            first_by_hash[digest] = rel
            kept.append(i)
        else:
            task = SourceTask(os.path.join(top, rel), rel, digest, size, fmt, kind)
            shoot.duplicates.append(Duplicate(rel, digest, original, task))
    del first_by_hash
    stems = export_stems([found[i] for i in kept])
    shoot.tasks = [SourceTask(os.path.join(top, found[i]), found[i], *facts[i], seq=seq, stem=stem)
                   for seq, (i, stem) in enumerate(zip(kept, stems), 1)]
    if paired:  # each skipped JPEG's task in its RAW's place, for Shoot.stand_in
        place = {t.source_path: t for t in shoot.tasks}
        for j, r in paired.items():
            raw = place.get(found[r])  # (a RAW that duplicates another is no task: its original's JPEG stands)
            if raw is not None:
                shoot.pair_tasks[raw.source_path] = SourceTask(os.path.join(top, found[j]), found[j], *facts[j],
                                                               seq=raw.seq, stem=raw.stem)
                # A culling only the pair's JPEG holds is the RAW's (a camera that rates its JPEG alone, a tool
                # that wrote into the JPEG): the RAW's own, and a sidecar, win.
                if raw.source_path not in embedded and found[j] in embedded:
                    embedded[raw.source_path] = embedded[found[j]]
        del place
    sidecars = [s.source_path for s in shoot.skipped if s.source_path.lower().endswith(".xmp")
                and s.reason.startswith("sidecar")]
    turns: dict[str, int] = {}
    if sidecars or embedded or embedded_turns:  # a sidecar wins over the file's own XMP, as Lightroom reads a RAW's
        in_files = {t.source_path: embedded[t.source_path] for t in shoot.tasks if t.source_path in embedded}
        in_sidecars, turns = photographer_xmp(root, sidecars, [t.source_path for t in shoot.tasks])
        shoot.culling = in_files | in_sidecars
        turns = embedded_turns | turns
        # A RAW's turn goes to its task (the decode develops it so); a rendered file's EXIF orientation is its own.
        for t in shoot.tasks:
            if t.source_kind is SourceKind.RAW and t.source_path in turns:
                object.__setattr__(t, "orientation", turns[t.source_path])  # (frozen: set once, here)
        picked = {sp for sp, c in shoot.culling.items() if is_pick(c, picks)}
        shoot.picked = len(picked)
        rejected = {sp for sp, c in shoot.culling.items() if c.rejected} if rejects == "skip" else set()
        _leave_out(shoot, rejected, REJECTED_REASON)
        if picks != "all" and picked:
            _leave_out(shoot, {t.source_path for t in shoot.tasks} - picked, NOT_PICKED_REASON)
    return shoot


def own_culling(location: str, rel: str, fmt: str, head: bytes, packet: bytes | None) -> Culling | None:
    """The culling a file's own metadata states: its XMP ``packet`` (:func:`embedded_packet`), else, where the packet
    states no rating (not even 0: the XMP is the later word), the stars its camera wrote outside XMP
    (:func:`camera_rating`); None without either."""
    culling = None if packet is None else packet_culling(packet, rel)
    if (culling is None and (packet is None or b":Rating" not in packet)
            and (stars := camera_rating(location, fmt, head)) is not None):
        culling = Culling(stars, None, (), rel)
    return culling


def file_culling(path: Path, head: bytes) -> Culling | None:
    """The photographer's culling of one file as the scan reads it: its sidecar beside it
    (:func:`~pipeline.kernel.sidecars.sidecar_owners`), else its own metadata (:func:`own_culling`; ``head``: the
    file's first bytes, as :func:`hash_file` gives them); a RAW+JPEG pair's JPEG is not looked at (``postprod
    inspect``)."""
    folder = path.parent
    sidecars = [e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(".xmp")]
    culling, _ = photographer_xmp(folder, sidecars, [path.name])
    if path.name in culling:
        return culling[path.name]
    fmt, _ = sniff_format(head, path.suffix)
    return own_culling(str(path), path.name, fmt, head, embedded_packet(str(path), fmt, head))


def _leave_out(shoot: Shoot, paths: set[str], reason: str) -> None:
    """Skip the tasks of ``paths`` for ``reason``, counted. After the numbering and the names: a frame taken
    back later keeps its own."""
    if not paths:
        return
    shoot.skipped += [Skipped(_shown(t.source_path), reason) for t in shoot.tasks if t.source_path in paths]
    shoot.tasks = [t for t in shoot.tasks if t.source_path not in paths]
    for sp in paths:
        shoot.culling.pop(sp, None)
        shoot.pair_tasks.pop(sp, None)


def export_stems(source_paths: list[str]) -> list[str]:
    """A name stem per source, safe for a file name and unique within the shoot.

    ``IMG_0002.dng`` and ``IMG_0002.JPG`` (RAW+JPEG shooting) become
    ``IMG_0002`` and ``IMG_0002_jpg``; the same name in two folders is told
    apart by its folder (``b_IMG_1``); names that differ only in ways a file
    name cannot keep (``Ärger``/``Arger``, NFC/NFD ``café``, case) get
    ``_2``, ``_3``, ... Who keeps the plain name depends only on the sorted
    source paths (RAWs first), so a rerun names every file the same way.
    See :func:`charts.naming.safe_stems`.
    """
    from charts.naming import safe_stems

    # Read off the strings as PurePosixPath reads them (folder, stem, extension): a path object per
    # image (its parts interned) was most of the scan's memory at 10,000 images (RESULTS.md, target 5).
    def folder(i: int) -> str:
        return source_paths[i].rpartition("/")[0]

    def alternatives(i: int, first: int) -> list[str]:
        stem, ext = _stem_and_ext(source_paths[i])
        kept_ext = _stem_and_ext(source_paths[first])[1]
        parent = folder(i)
        by_ext = [f"{stem}_{ext}"] if ext and ext != kept_ext else []
        parent_name = parent.rpartition("/")[2]
        by_folder = [f"{parent_name}_{stem}"] if parent_name and parent != folder(first) else []
        return by_ext + by_folder if by_ext and parent == folder(first) else by_folder + by_ext

    # RAWs sort before their JPEG, then by path.
    order = [(_stem_and_ext(sp)[1] not in RAW_EXTENSIONS, sp) for sp in source_paths]
    return safe_stems([_stem_and_ext(sp)[0] for sp in source_paths], order=order, alternatives=alternatives)


def _stem_and_ext(source_path: str) -> tuple[str, str]:
    """The file name's stem and its extension, lower case without the dot, as :class:`PurePosixPath` splits
    them (``stem``, ``suffix``): a leading dot or a trailing one is part of the stem."""
    name = source_path.rpartition("/")[2]
    i = name.rfind(".")
    if 0 < i < len(name) - 1:
        return name[:i], name[i + 1 :].lower()
    return name, ""
