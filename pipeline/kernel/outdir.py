"""The output folder: checked before any work, held by one run at a time, of one shoot and chart.

Three things keep a folder honest about what it holds:

* :func:`check_writable`: a read-only, missing-parent or not-a-folder
  ``--out`` stops the run before any file is read, with exit code 2;
* :class:`RunLock`: ``OUT/.postprod/lock``, held for the whole run, so two
  runs into one folder do not both do the whole work unaware of each other
  (the second waits or stops, naming the holder);
* :func:`check_identity`: a folder made for one shoot and chart refuses
  another, unless the run is told to replace its deliveries (``--force``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Container
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.files import write_json_atomic

log = logging.getLogger(__name__)

STATE_DIR = ".postprod"
LOCK_NAME = "lock"
IDENTITY_NAME = "run.json"
#: Where ``--force`` puts the review database of the shoot it replaces.
REPLACED_DIR = "replaced"


def _out_key(out_dir: Path) -> Location:
    return Location(str(out_dir), key="--out")


def check_writable(out_dir: Path) -> None:
    """Create the output folder and its state folder, and prove a file can be written there.

    Raises
    ------
    ConfigError
        When ``out_dir`` (or a folder above it) is a file, cannot be created,
        or is read-only or full; the message names the folder and the reason.
    """
    out_dir = Path(out_dir)
    for p in (out_dir, *out_dir.parents):
        if p.exists():
            if not p.is_dir():
                what = "the output folder is" if p == out_dir else f"{p} is"
                raise ConfigError(f"{what} a file, not a folder: choose another --out", _out_key(out_dir))
            break
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        state = out_dir / STATE_DIR
        state.mkdir(exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=state)
        try:
            os.write(fd, b"postprod")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        reason = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOSPC: "the disk is full",
                  errno.EDQUOT: "the disk quota is exhausted"}.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(f"cannot write into the output folder: {reason}", _out_key(out_dir)) from None


# --- one run per folder ------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds an output folder's lock (what the lock file says)."""

    pid: int
    host: str
    started_at: str
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at} ({self.command})"

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else "python")

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started_at"]), str(data.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None


class FolderBusy(ConfigError):
    """Another run holds the output folder; exit code 2, naming the holder."""

    def __init__(self, out_dir: Path, holder: Holder | None) -> None:
        who = str(holder) if holder else "a run that did not say who it is"
        super().__init__(f"another postprod run is writing into this folder: {who}; wait for it to finish "
                         "(--wait) or choose another --out", _out_key(out_dir))
        self.holder = holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``OUT/.postprod/lock``: one run per output folder at a time.

    The lock is an ``flock`` on the file, which the kernel drops when the
    holder exits however it exits (``kill -9`` included), so a dead run's
    lock is taken over without a stale-lock timeout; the file says who holds
    it (pid, host, start time, command) for the message a second run shows.
    Where the file system has no ``flock`` the file alone is the lock, and
    one left by a dead process on this host is taken over.

    Parameters
    ----------
    out_dir : Path
        The output folder (its state folder must exist: :func:`check_writable`).
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / STATE_DIR / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, wait: bool = False, poll_s: float = 0.5,
                on_wait: Callable[[Holder | None], None] | None = None) -> None:
        """Take the lock, or wait for it (``wait``), or raise.

        Raises
        ------
        FolderBusy
            When another live process holds it and ``wait`` is false.
        """
        told = False
        while True:
            holder = self._try()
            if holder is None:
                return
            if not wait:
                raise FolderBusy(self.out_dir, holder if isinstance(holder, Holder) else None)
            if not told:
                (on_wait or (lambda h: log.warning("waiting for the run that holds %s: %s", self.out_dir, h)))(
                    holder if isinstance(holder, Holder) else None)
                told = True
            time.sleep(poll_s)

    def _try(self) -> Holder | bool | None:
        """None when taken; else who holds it (False when the file does not say)."""
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return self._holder(fd) or False
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
                    holder = self._holder(fd)
                    if holder is not None and (holder.host != socket.gethostname() or _pid_alive(holder.pid)):
                        return holder  # no flock here: the file is the lock, and its writer may be alive
                # The holder that just let go removes the file: then lock the one at the path now.
                try:
                    current = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    current = False
                if not current:
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(asdict(Holder.me())) + "\n").encode(), 0)
                self._fd, fd = fd, -1
                return None
            finally:
                if fd >= 0:
                    os.close(fd)

    @staticmethod
    def _holder(fd: int) -> Holder | None:
        try:
            return Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # still holding it: no one can have taken it meanwhile
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- one shoot and chart per folder ----------------------------------------------------------


@dataclass(frozen=True)
class FolderIdentity:
    """What an output folder's deliveries are of: which shoot, under which chart."""

    shoot_dir: str
    shoot_id: str
    chart: str | None
    chart_hash: str | None

    def describe(self) -> str:
        chart = f"chart '{self.chart}'" if self.chart else "no chart"
        return f"shoot '{self.shoot_id}' ({self.shoot_dir}) under {chart}"


def read_identity(out_dir: Path) -> FolderIdentity | None:
    """The identity an earlier run recorded (``.postprod/run.json``, else the manifest's metadata)."""
    out_dir = Path(out_dir)
    try:
        data = json.loads((out_dir / STATE_DIR / IDENTITY_NAME).read_text(encoding="utf-8"))
        return FolderIdentity(data["shoot_dir"], data["shoot_id"], data.get("chart"), data.get("chart_hash"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    manifest = out_dir / "manifest.parquet"
    if not manifest.is_file():
        return None
    try:  # a folder written before run.json existed
        import pyarrow.parquet as pq

        meta = {k.decode(): v.decode() for k, v in (pq.read_schema(manifest).metadata or {}).items()}
    except (OSError, ValueError):
        return None
    shoot = meta.get("postprod.shoot")
    if not shoot:
        return None
    return FolderIdentity(shoot, meta.get("postprod.shoot_id") or Path(shoot).name,
                          meta.get("postprod.chart") or None, meta.get("postprod.chart_hash") or None)


def check_identity(out_dir: Path, wanted: FolderIdentity, force: bool) -> FolderIdentity | None:
    """Refuse to mix two shoots or two charts in one folder; record ``wanted`` as the folder's.

    Returns
    -------
    FolderIdentity or None
        The folder's earlier identity when ``force`` replaces a different one.

    Raises
    ------
    ConfigError
        When the folder holds another shoot's or another chart's deliveries
        and ``force`` is false.
    """
    before = read_identity(out_dir)
    replaced = None
    if before is None and not force and _holds_other_files(Path(out_dir)):
        raise ConfigError("this folder holds files postprod did not write, and a run removes what it does not "
                          "write from its exports/, previews/ ... folders: choose a new or empty --out (or pass "
                          "--force)", _out_key(out_dir))
    if before is not None and before != wanted:
        if before.shoot_dir != wanted.shoot_dir or before.shoot_id != wanted.shoot_id:
            what = f"the outputs of {before.describe()}, not of {wanted.describe()}"
        elif before.chart != wanted.chart:
            what = f"deliveries made under chart '{before.chart}', not '{wanted.chart}'"
        else:
            what = f"deliveries made under an earlier version of chart '{wanted.chart}' (its content changed)"
        if not force:
            raise ConfigError(
                f"this folder holds {what}: pass --force to replace them (finished analysis is reused; "
                "nothing of the old deliveries is kept), or choose another --out", _out_key(out_dir))
        replaced = before
        log.warning("--force: replacing %s in %s", before.describe(), out_dir)
    write_json_atomic(Path(out_dir) / STATE_DIR / IDENTITY_NAME, asdict(wanted))
    return replaced


#: Where a folder keeps the RAW+JPEG pairs policy its last run used (``--raw-jpeg-pairs``), so that a rerun,
#: ``--only plan`` or ``postprod render`` without the option delivers the same files.
PAIRS_NAME = "raw_jpeg_pairs.json"
#: The same for what its last run did with the photographer's rejects (``--photographer-rejects``).
REJECTS_NAME = "photographer_rejects.json"
#: And with the frames the photographer did not pick (``--photographer-picks``).
PICKS_NAME = "photographer_picks.json"


def folder_choice(out_dir: Path, name: str, asked: str | None, earlier: FolderIdentity | None,
                  choices: Container[str], new: str, legacy: str) -> str:
    """A run's choice of what to develop that a folder keeps for its reruns (``--raw-jpeg-pairs``,
    ``--photographer-rejects``): ``asked``, else, in a folder holding this shoot's deliveries (``earlier``, its
    identity before this run: :func:`read_identity`), the choice its last run recorded in ``name``
    (:func:`record_folder_choice`), or ``legacy`` where none is (what an earlier version did: a rerun keeps
    its deliveries); else ``new`` (a new folder, or one whose deliveries another shoot's replace: ``earlier``
    None). So a rerun, ``--only plan`` or ``postprod render`` without the option delivers the same files.
    """
    if asked is not None:
        return asked
    if earlier is None:
        return new
    try:
        data = json.loads((Path(out_dir) / STATE_DIR / name).read_text(encoding="utf-8"))
        recorded = data.get("choice", data.get("pairs"))  # ("pairs": the key of the first version's file)
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded if recorded in choices else legacy


def record_folder_choice(out_dir: Path, name: str, choice: str) -> None:
    """Keep ``choice`` in ``name`` as the folder's for the runs after this one (:func:`folder_choice`)."""
    write_json_atomic(Path(out_dir) / STATE_DIR / name, {"choice": choice})


def pairs_policy(out_dir: Path, asked: str | None, earlier: FolderIdentity | None) -> str:
    """The RAW+JPEG pairs policy of a run into ``out_dir`` (:func:`folder_choice`): ``"raw"`` in a new folder,
    ``"both"`` in one an earlier version delivered into (it developed every file)."""
    from pipeline.kernel.ingest import RAW_JPEG_PAIRS

    return folder_choice(out_dir, PAIRS_NAME, asked, earlier, RAW_JPEG_PAIRS, new="raw", legacy="both")


def rejects_policy(out_dir: Path, asked: str | None, earlier: FolderIdentity | None) -> str:
    """What a run into ``out_dir`` does with the photographer's rejects (:func:`folder_choice`): ``"skip"`` in
    a new folder, ``"process"`` in one an earlier version delivered into (it read no sidecar)."""
    from pipeline.kernel.sidecars import PHOTOGRAPHER_REJECTS

    return folder_choice(out_dir, REJECTS_NAME, asked, earlier, PHOTOGRAPHER_REJECTS, new="skip", legacy="process")


def picks_policy(out_dir: Path, asked: str | None, earlier: FolderIdentity | None) -> str:
    """Whether a run into ``out_dir`` develops only the photographer's picks (:func:`folder_choice`): ``"all"``
    in a new folder and in one an earlier version delivered into (it developed every frame)."""
    from pipeline.kernel.sidecars import PICK_CHOICES

    return folder_choice(out_dir, PICKS_NAME, asked, earlier, PICK_CHOICES, new="all", legacy="all")


def _holds_other_files(out_dir: Path) -> bool:
    """Whether a folder with no recorded identity has content a run did not put there.

    A run that was killed before its first delivery leaves its state folder
    (journal, decodes): that is postprod's own.
    """
    state = out_dir / STATE_DIR
    ours = any(p.name not in (LOCK_NAME,) for p in state.iterdir()) if state.is_dir() else False
    return not ours and any(p.name != STATE_DIR for p in out_dir.iterdir())


def set_aside_reviews(out_dir: Path, db_name: str = "review.sqlite") -> Path | None:
    """Move another shoot's review database out of the way (into ``.postprod/replaced/``).

    Decisions are keyed by source path, and two shoots can both have an
    ``IMG_0001.CR3``: the new shoot must not inherit the old one's, neither
    from the database nor from the old shoot's instructions documents (which
    go: a new database would take its decisions from them).
    """
    for doc in (Path(out_dir) / "instructions").glob("*.json"):
        doc.unlink(missing_ok=True)
    db = Path(out_dir) / db_name
    if not db.exists():
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(out_dir) / STATE_DIR / REPLACED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{db.stem}-{stamp}{db.suffix}"
    for suffix in ("", "-wal", "-shm"):
        src = db.with_name(db.name + suffix)
        if src.exists():
            shutil.move(str(src), str(target.with_name(target.name + suffix)))
    return target
