"""The model registry: every weight file the pipeline may load, pinned by SHA-256.

Modelled on scikit-image's ``data/_registry.py`` (file -> hash -> URL): a file
is found in the cache (``POSTPROD_MODEL_DIR``, default
``~/.cache/postprod/models``), its SHA-256 is checked, and only a matching
file is ever handed to a loader. A missing file is downloaded from its
official release address over https, to a temporary file in the cache, hashed
while it streams, and renamed into place only when the hash matches, so a
half-written or tampered file never sits under the real name. With
``POSTPROD_OFFLINE=1`` (tests, air-gapped render farms) nothing is downloaded:
the error says which command fetches the file.

Some official addresses are zip packs (InsightFace ships its detectors inside
``buffalo_*.zip``); for those the registry pins the hash of the member it
extracts, because that is the file that gets loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

MODEL_DIR_ENV = "POSTPROD_MODEL_DIR"
OFFLINE_ENV = "POSTPROD_OFFLINE"
DEFAULT_MODEL_DIR = Path("~/.cache/postprod/models")

#: ``progress(bytes_done, bytes_total_or_None)``, called as a download streams.
Progress = Callable[[int, "int | None"], None]

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class ModelError(RuntimeError):
    """A model file is missing, cannot be fetched, or does not match its hash.

    The message always names the remedy (usually ``postprod models fetch NAME``).
    """


class ModelTask(StrEnum):
    FACE_DETECTION = "face_detection"


@dataclass(frozen=True)
class ModelEntry:
    """One weight file the pipeline knows how to fetch, verify and load.

    Attributes
    ----------
    name : str
        Registry key, used on the command line (``postprod models fetch NAME``).
    filename : str
        File name in the model cache.
    sha256 : str
        SHA-256 (hex) of ``filename``; for a zip pack, of the extracted member.
    urls : tuple of str
        Official https download addresses, tried in order.
    licence : str
        Licence of the weights (not of the code that runs them).
    task : ModelTask
        What the model does.
    backend : str
        The detector backend that loads it (``models.face_detectors``).
    archive_member : str or None
        Path inside the zip pack at ``urls`` when the official release is a
        pack; ``None`` when the address serves the file itself.
    size : int or None
        Size of ``filename`` in bytes, for progress bars.
    notes : str
        What a user should know before using it (licence restrictions).
    """

    name: str
    filename: str
    sha256: str
    urls: tuple[str, ...]
    licence: str
    task: ModelTask
    backend: str
    archive_member: str | None = None
    size: int | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        for url in self.urls:
            if urllib.parse.urlsplit(url).scheme != "https":
                raise ValueError(f"model {self.name}: download address must be https, got {url}")
        if len(self.sha256) != 64:
            raise ValueError(f"model {self.name}: sha256 must be 64 hex digits")

    @property
    def url(self) -> str:
        return self.urls[0]


YUNET_2023MAR = ModelEntry(
    name="yunet_2023mar",
    filename="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    urls=(
        # opencv_zoo keeps its weights in Git LFS; github.com/raw redirects to the LFS media host.
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
        "https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/face_detection_yunet/"
        "face_detection_yunet_2023mar.onnx",
    ),
    licence="MIT (opencv_zoo); trained with libfacedetection.train (Apache-2.0)",
    task=ModelTask.FACE_DETECTION,
    backend="yunet",
    size=232_589,
    notes="Default face detector; safe for commercial use.",
)

SCRFD_500M = ModelEntry(
    name="scrfd_500m",
    filename="scrfd_500m_bnkps.onnx",
    sha256="6c6ba7956684796d7d582bfa1ab95dfe01dd280159f6bff1e23c1bc32bcc8431",
    urls=(
        # InsightFace publishes SCRFD-500M only inside its packs, as det_500m.onnx;
        # buffalo_sc is the smallest pack that holds it (buffalo_s holds the same file).
        "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_sc.zip",
        "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_s.zip",
    ),
    licence="InsightFace pretrained weights: non-commercial research only",
    task=ModelTask.FACE_DETECTION,
    backend="scrfd",
    archive_member="det_500m.onnx",
    size=2_529_618,
    notes="Only for users who hold a licence for InsightFace's weights; YuNet is the commercial-safe default.",
)

REGISTRY: dict[str, ModelEntry] = {e.name: e for e in (YUNET_2023MAR, SCRFD_500M)}


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``.

    Raises
    ------
    ModelError
        If no model has that name (the message lists the known ones).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}' (known models: {', '.join(sorted(REGISTRY))})") from None


def model_dir() -> Path:
    """The model cache: ``$POSTPROD_MODEL_DIR`` or ``~/.cache/postprod/models``."""
    return Path(os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR).expanduser()


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cached_path(name: str) -> Path:
    """Where model ``name`` lives in the cache (whether or not it is there)."""
    return model_dir() / get_entry(name).filename


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Hashing on every call would cost little for these files, but workers call
# ensure_model once per process and a 100 MB model would still be re-read.
_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def verify_file(entry: ModelEntry, path: Path) -> None:
    """Check that ``path`` is ``entry``'s file, byte for byte.

    Raises
    ------
    ModelError
        If the SHA-256 differs from the registry's; the file must not be loaded.
    FileNotFoundError
        If ``path`` does not exist.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(key)
    actual = known or sha256_file(path)
    if actual != entry.sha256:
        raise ModelError(
            f"{path} has SHA-256 {actual}, but model '{entry.name}' must have {entry.sha256}: "
            f"the file is corrupt, truncated or not the official release; it will not be loaded. "
            f"Replace it with `postprod models fetch {entry.name}`."
        )
    with _verified_lock:
        _verified[key] = actual


def fetch_command(name: str) -> str:
    return f"postprod models fetch {name}"


def ensure_model(name: str, progress: Progress | None = None) -> Path:
    """Path of model ``name`` in the cache, verified; downloaded if missing.

    Parameters
    ----------
    name : str
        Registry key (see :data:`REGISTRY`).
    progress : callable, optional
        ``progress(bytes_done, bytes_total)`` while downloading.

    Returns
    -------
    Path
        A file whose SHA-256 matches the registry.

    Raises
    ------
    ModelError
        If the name is unknown; if the cached file's hash does not match (it
        is never loaded nor silently replaced: run the fetch command); if the
        file is missing and ``POSTPROD_OFFLINE=1``; or if every download
        address fails or serves a file with the wrong hash.
    """
    entry = get_entry(name)
    path = model_dir() / entry.filename
    if path.is_file():
        verify_file(entry, path)
        return path
    if is_offline():
        raise ModelError(
            f"model '{name}' ({entry.filename}) is not in the model cache {path.parent} and "
            f"{OFFLINE_ENV}=1 forbids downloading it: run `{fetch_command(name)}` on a machine with "
            f"internet access (with {MODEL_DIR_ENV} pointing at this cache), or copy the file there."
        )
    return download_model(entry, path, progress)


def fetch_model(name: str, progress: Progress | None = None) -> Path:
    """Download model ``name`` unless a verified copy is cached; replace a bad copy.

    This is what ``postprod models fetch`` runs: the remedy named by every
    :class:`ModelError`, so unlike :func:`ensure_model` it overwrites a cached
    file whose hash does not match.

    Raises
    ------
    ModelError
        If the name is unknown, ``POSTPROD_OFFLINE=1`` is set and no verified
        copy is cached, or the download fails or does not match the hash.
    """
    entry = get_entry(name)
    path = model_dir() / entry.filename
    if path.is_file():
        try:
            verify_file(entry, path)
            return path
        except ModelError:
            if is_offline():
                raise
    elif is_offline():
        raise ModelError(f"cannot fetch model '{name}': {OFFLINE_ENV}=1 is set; unset it to download")
    return download_model(entry, path, progress)


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (GitHub sends release assets to its CDN) but never to http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise urllib.error.URLError(f"refusing redirect to a non-https address: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpsOnlyRedirects())


def _stream(url: str, dest, progress: Progress | None) -> str:  # type: ignore[no-untyped-def]
    """Copy ``url`` into the open file ``dest``; return the SHA-256 of what was read."""
    if urllib.parse.urlsplit(url).scheme != "https":
        raise ModelError(f"refusing to download over plain http: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "postprod-model-fetch"})
    digest = hashlib.sha256()
    with _opener.open(request, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            dest.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def _extract_member(archive: Path, member: str, dest) -> str:  # type: ignore[no-untyped-def]
    """Copy the zip member whose base name is ``member`` into ``dest``; return its SHA-256."""
    with zipfile.ZipFile(archive) as zf:
        # Packs put their files at the top level or under a folder named after the pack.
        names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
        if not names:
            raise ModelError(f"the downloaded pack does not contain {member}")
        digest = hashlib.sha256()
        with zf.open(names[0]) as src:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                dest.write(chunk)
                digest.update(chunk)
    return digest.hexdigest()


def download_model(entry: ModelEntry, path: Path, progress: Progress | None = None) -> Path:
    """Download ``entry`` to ``path``: temporary file, verify, atomic rename.

    Raises
    ------
    ModelError
        If no address serves a file (or pack member) with the registry's hash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in entry.urls:
        tmp_paths: list[Path] = []
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=path.parent)
            tmp_paths.append(Path(tmp))
            with os.fdopen(fd, "wb") as fh:
                actual = _stream(url, fh, progress)
            if entry.archive_member:
                archive = Path(tmp)
                fd, tmp = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=path.parent)
                tmp_paths.append(Path(tmp))
                with os.fdopen(fd, "wb") as fh:
                    actual = _extract_member(archive, entry.archive_member, fh)
            if actual != entry.sha256:
                failures.append(f"{url}: SHA-256 {actual}, expected {entry.sha256}")
                continue
            os.replace(tmp, path)
            tmp_paths.remove(Path(tmp))
            return path
        except (urllib.error.URLError, OSError, zipfile.BadZipFile, ModelError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            for p in tmp_paths:
                p.unlink(missing_ok=True)
    raise ModelError(
        f"could not fetch model '{entry.name}' ({entry.filename}):\n  " + "\n  ".join(failures)
        + f"\nDownload it by hand from {entry.url} into {path.parent} and run `postprod models verify`,"
        + f" or, if the file is already on this machine, set {MODEL_DIR_ENV} to the folder that holds it."
    )


def model_status(name: str) -> tuple[bool, bool | None]:
    """``(cached, verified)`` for model ``name``; ``verified`` is None when not cached."""
    entry = get_entry(name)
    path = model_dir() / entry.filename
    if not path.is_file():
        return False, None
    try:
        verify_file(entry, path)
    except ModelError:
        return True, False
    return True, True


# --- load once per worker ------------------------------------------------------
_loaded: dict[tuple, object] = {}
_load_lock = threading.Lock()


def load_once(key: tuple, loader: Callable[[], object]) -> object:
    """Build ``loader()`` once per process for ``key`` and reuse it.

    A worker's stages may be set up from several threads (Ray actors with
    concurrency); the lock makes the first caller load and the others wait,
    rather than each opening its own inference session.
    """
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = loader()
        return _loaded[key]


def clear_loaded() -> None:
    """Forget loaded models (tests, or after changing the model cache)."""
    with _load_lock:
        _loaded.clear()


def loaded() -> list[object]:
    """The models :func:`load_once` holds in this process (a benchmark reads where its detectors ran)."""
    with _load_lock:
        return list(_loaded.values())
