"""postprod against the floor (LibRaw alone) and the peers (darktable-cli, rawtherapee-cli): one table.

Everything is measured in one run on the same files, so ratios hold on a
noisy machine even when absolute numbers drift:

- the floor: LibRaw's decode alone (``rawpy`` ``postprocess`` with the
  pipeline's settings: camera white balance, linear 16-bit sRGB), full and
  half size, in this process;
- postprod's whole run (ingest, analysis, planning, render and export of two
  renditions, a 2048 px JPEG and a 1080 px WebP, manifest and report) with the
  local executor and with Ray at 1 and 2 workers, each in its own process
  whose memory (and that of every process it starts) is sampled every 0.1 s
  (the driver's own peak is read exactly, from the kernel's high-water mark, on Linux);
- darktable-cli and rawtherapee-cli exporting the same files to 2048 px JPEGs,
  one process per set of files (their start-up is counted once, as postprod's).

Corpora: the real camera RAW files of the test data (``POSTPROD_TESTDATA``,
default ``../shared/data``) and 24 MP DNG files made from its photographs
(:mod:`benchmarks.corpus`, cached in ``--corpus-dir``). The targets are
printed PASS/MISS with their numbers. Also timed:

- a 6-file shoot end to end, ``postprod process`` as a user runs it (Python's
  and Ray's start included), with the default auto executor, the local one and
  Ray;
- 102 MP DNGs (``--big-count``, 0 to skip) with a full-resolution 16-bit TIFF
  master, an 8x10 crop and a proof, in one process whose peak RSS is sampled,
  against LibRaw's own decode of the same files;
- ``--driver-scaling``: the driver's peak memory on 100 against 10,000 small
  images (``--driver-counts``) through Ray, the large run's throughput, time
  to its first export and the driver's serial parts (hashing, planning,
  journal, outputs).

    python benchmarks/run.py [--quick] [--dng-count 6] [--big-count 2] [--corpus-dir DIR] [--driver-scaling]
                             [--write-results]
    python benchmarks/run.py --before CHECKOUT [--rounds 2] [--write-results]   # a change, side by side
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout whose postprod is measured: this one, or the one --before names (its child processes run
# this script with POSTPROD_BENCH_CODE set, so both sides are timed by the same measuring code).
CODE = Path(os.environ.get("POSTPROD_BENCH_CODE", ROOT))
if str(CODE) not in sys.path:
    sys.path.insert(0, str(CODE))

import psutil  # noqa: E402

from benchmarks._tables import cpu_model, verdict  # noqa: E402
from benchmarks.corpus import (  # noqa: E402
    build_dng_corpus,
    build_large_dng_corpus,
    build_small_corpus,
    link_shoot,
    real_raw_files,
)

DEFAULT_CORPUS = Path.home() / ".cache" / "postprod" / "bench"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
LONG_EDGE = 2048
JPEG_QUALITY = 90
MB = 1024 * 1024

BENCH_CHART = f"""\
# Written by benchmarks/run.py: the two renditions every configuration renders.
schema_version: 2
extends: base
description: Benchmark - a {LONG_EDGE} px JPEG and a 1080 px WebP.
renditions:
  web:
    long_edge_px: {LONG_EDGE}
    format: jpeg
    quality: {JPEG_QUALITY}
    bit_depth: 8
    color_space: srgb
  web_small:
    long_edge_px: 1080
    format: webp
    quality: 80
    bit_depth: 8
    color_space: srgb
"""

BIG_CHART = """\
# Written by benchmarks/run.py: what a medium-format product or real-estate shoot delivers.
schema_version: 2
extends: base
description: Benchmark - full-resolution 16-bit TIFF master, an 8x10 crop, a proof.
crops:
  - {aspect: "4:5", placement: center}
renditions:
  web: null
  master: {format: tiff, bit_depth: 16, color_space: adobe_rgb, sharpen_amount: 1.0}
  print_8x10: {crop: "4:5", width_px: 2400, height_px: 3000, format: tiff, bit_depth: 16, color_space: adobe_rgb,
               sharpen_amount: 1.0}
  proof: {long_edge_px: 1600, format: jpeg, quality: 85, color_space: srgb}
"""

# (label, executor, workers, threads: the in-process executor's per image, None = every usable CPU)
PIPELINE_CONFIGS = [
    ("postprod, local executor, 1 worker", "local", 1, None),
    ("postprod, auto executor (the default)", "auto", None, None),
    ("postprod, Ray, 1 worker", "ray", 1, None),
    ("postprod, Ray, 2 workers", "ray", 2, None),
    # One thread an image: a Ray worker's work, and the local executor's before 2026-12-06.
    ("postprod, local executor, 1 worker, 1 thread", "local", 1, 1),
]

# Targets (issue 16; issue 6's where still measured).
HALF_FLOOR_RATIO_MAX = 2.0  # 24 MP: one worker against LibRaw's half-size decode
SMALL_FLOOR_RATIO_MAX = 2.0  # small RAWs: one worker against LibRaw's full decode
PEER_SPEEDUP_MIN = 2.0
RAY_SCALING_MIN = 1.7
SMALL_SHOOT_MAX = 1.5  # a 6-file shoot end to end, auto against local
WORKER_RSS_MAX_MB = 1.2 * 1000  # 1.2 GB
DRIVER_GROWTH_MAX = 1.10
SMALL_SHOOT_FILES = 6


# --- memory sampling ------------------------------------------------------------------------


class RssSampler:
    """Peak resident memory of a process and of everything it starts, sampled in a thread.

    Processes are sorted into the driver (``root_pid``), Ray workers (their
    command line starts ``ray::``, as Ray titles them), and the rest (Ray's own
    servers, decoders' helpers). Peaks are kept per process id.
    """

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(root_pid)
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.kinds: dict[int, str] = {}
        # CPU seconds (user + system) of each process at its first and latest sample: what it spent meanwhile.
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kind(self, proc: psutil.Process) -> str:
        if proc.pid == self.root.pid:
            return "driver"
        try:
            cmd = " ".join(proc.cmdline())
        except (psutil.Error, OSError):
            return "other"
        return "worker" if cmd.startswith("ray::") else "other"

    def sample(self) -> None:
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except (psutil.Error, OSError):
                continue
            self.cpu_first.setdefault(proc.pid, times.user + times.system)
            self.cpu_last[proc.pid] = times.user + times.system
            if proc.pid not in self.kinds or self.kinds[proc.pid] == "other":
                self.kinds[proc.pid] = self._kind(proc)
            self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.peaks.clear()
        self.cpu_first.clear()
        self.cpu_last.clear()

    def mark_cpu(self) -> None:
        """Count each process's CPU seconds from its latest sample on."""
        self.cpu_first.update(self.cpu_last)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        def of(kind: str) -> list[int]:
            return [v for pid, v in self.peaks.items() if self.kinds.get(pid) == kind]

        workers = of("worker")
        return {
            "driver_mb": max(of("driver"), default=0) / MB,
            "worker_max_mb": max(workers, default=0) / MB,
            "workers_seen": len(workers),
            "other_sum_mb": sum(of("other")) / MB,
            # The workers' CPU seconds: against their wall time, what they spent working rather than waiting.
            "worker_cpu_s": sum(self.cpu_last[pid] - self.cpu_first[pid] for pid in self.cpu_last
                                if self.kinds.get(pid) == "worker"),
        }


def reset_own_peak_rss() -> bool:
    """Start this process's exact peak resident memory afresh (Linux: ``VmHWM`` back to the current RSS).

    Sampling every 0.1 s misses short peaks (the contact sheets' ~0.7 s transient on a small shoot moved
    the 100-image driver figure by about 20 MB between runs of the same code); the kernel's high-water
    mark does not. False where ``/proc/self/clear_refs`` cannot be written (not Linux, older kernels).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def own_peak_rss_mb() -> float | None:
    """This process's exact peak resident memory since the last :func:`reset_own_peak_rss` (MB), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return None


# --- the child: one pipeline configuration on every set ----------------------------------------


def child_main(spec_path: Path) -> None:
    """Run postprod with one executor configuration on every set; write the measurements as JSON."""
    spec = json.loads(spec_path.read_text())
    import logging

    import pipeline.kernel.run as run_module
    from pipeline.kernel.run import RunSettings, process_shoot

    sampler = RssSampler(os.getpid()).start()
    executor, workers = spec["executor"], spec["workers"]
    out: dict[str, Any] = {"sets": {}}
    executors: list[Any] = []
    make = run_module.make_executor

    def capture(*a: Any, **k: Any) -> Any:
        ex = make(*a, **k)
        executors.append(ex)
        return ex

    run_module.make_executor = capture
    from pipeline.kernel.journal import Journal

    journal_put = Journal.put
    journal_s: list[float] = []

    def timed_put(self: Any, *a: Any, **k: Any) -> None:
        t = time.perf_counter()
        journal_put(self, *a, **k)
        journal_s.append(time.perf_counter() - t)

    Journal.put = timed_put  # type: ignore[method-assign]
    if executor == "ray":
        import ray

        start = time.perf_counter()
        ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING)
        out["ray_init_s"] = time.perf_counter() - start
    write_outputs = run_module.write_outputs
    outputs_s: list[float] = []

    def timed_outputs(*a: Any, **k: Any) -> None:
        t = time.perf_counter()
        write_outputs(*a, **k)
        outputs_s.append(time.perf_counter() - t)

    run_module.write_outputs = timed_outputs
    loaded: list[bool] = []
    if executor == "ray":
        from pipeline.executors.ray import RayExecutor

        load = RayExecutor._load

        def counted_load(self: Any, actors: list[Any], graph: Any) -> None:
            load(self, actors, graph)
            if not loaded:  # the workers' CPU counts from here: their start (imports, models) is not the images'
                sampler.sample()
                sampler.mark_cpu()
                loaded.append(True)

        RayExecutor._load = counted_load  # type: ignore[method-assign]
    for name, shoot, dest in spec["sets"]:
        sampler.sample()
        sampler.reset()
        loaded.clear()
        exact = reset_own_peak_rss()
        executors.clear()
        outputs_s.clear()
        journal_s.clear()
        phases: list[tuple[str, float]] = []
        first_export: list[float] = []
        chosen: list[str] = []
        start, cpu_start = time.perf_counter(), time.process_time()

        def on_record(record: Any) -> None:
            if record.exports and not first_export:
                first_export.append(time.perf_counter() - start)

        # The shoots are folders of links to the cached corpus: followed (the benchmark's own files).
        # (threads only when set: a checkout from before --threads is timed with --before too)
        settings = RunSettings(shoot_dir=Path(shoot), out_dir=Path(dest), executor=executor, workers=workers,
                               chart=Path(spec["chart"]), follow_external_symlinks=True,
                               graph_path=Path(spec["graph"]) if spec.get("graph") else None,
                               **({"threads": spec["threads"]} if spec.get("threads") else {}))
        result = process_shoot(settings, on_phase=lambda p, n: phases.append((p, time.perf_counter() - start)),
                               on_record=on_record, on_executor=chosen.append)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        sampler.sample()
        # One pass over the records (they are read from the run's store, not held in memory).
        stage: dict[str, float] = {}
        ok = exports = 0
        failed: list[str] = []
        for r in result.records:
            if r.duplicate_of is not None:
                continue
            if r.status == "failed":
                failed.append(f"{r.source_path}: {r.error}")
            elif r.status == "ok":
                ok += 1
                exports += len(r.exports)
                for k, v in r.stage_seconds.items():
                    stage[k] = stage.get(k, 0.0) + v
        stage = {k: v / ok for k, v in stage.items()} if ok else {}
        out["sets"][name] = {
            "wall_s": wall,
            "cpu_s": cpu,  # this process's, all its threads (not exiftool's, a process of its own)
            "ok": ok,
            "failed": failed,
            "exports": exports,
            "stage_s": stage,
            "phases": phases,
            "outputs_s": sum(outputs_s),
            "journal_s": sum(journal_s),
            "first_export_s": first_export[0] if first_export else None,
            "executor": chosen[0] if chosen else executor,
            "bytes": sum(p.stat().st_size for p in Path(shoot).iterdir() if p.is_file()),
            "worker_startup_s": [s for ex in executors for s in getattr(ex, "startup_seconds", [])],
            **sampler.summary(),
        }
        # The driver's exact peak where the kernel keeps it; the sampled one stays for older runs' sake.
        peak = own_peak_rss_mb() if exact else None
        out["sets"][name]["driver_sampled_mb"] = out["sets"][name]["driver_mb"]
        if peak is not None:
            out["sets"][name]["driver_mb"] = max(peak, out["sets"][name]["driver_mb"])
    if executor == "ray":
        import ray

        start = time.perf_counter()
        ray.shutdown()
        out["ray_shutdown_s"] = time.perf_counter() - start
    sampler.stop()
    Path(spec["result"]).write_text(json.dumps(out, indent=1))


def run_child(executor: str, workers: int | None, sets: dict[str, Path], work: Path, chart: Path, tag: str,
              graph: Path | None = None, code: Path = ROOT, threads: int | None = None) -> dict:
    """One child process timing postprod on every set; ``code``: the checkout whose postprod (and run.py) runs."""
    spec = {
        "executor": executor,
        "workers": workers,
        "threads": threads,
        "chart": str(chart),
        "graph": str(graph) if graph is not None else None,
        "sets": [[name, str(shoot), str(work / f"out_{tag}_{i}")] for i, (name, shoot) in enumerate(sets.items())],
        "result": str(work / f"result_{tag}.json"),
    }
    spec_path = work / f"spec_{tag}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "POSTPROD_BENCH_CODE": str(code)}
    env.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local Ray: no token prompt or warning
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)], env=env,
                          capture_output=True, text=True, cwd=code)
    if proc.returncode != 0:
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(Path(spec["result"]).read_text())


# --- the floor ------------------------------------------------------------------------------


def time_floor(files: list[Path]) -> dict[str, list[float]]:
    """Seconds of LibRaw's full and half-size decode per file (open + unpack + process), the pipeline's settings."""
    from pipeline.imaging.decode import decode_raw_linear, open_raw

    out: dict[str, list[float]] = {"full": [], "half": [], "full_cpu": [], "half_cpu": []}
    for path in files:
        for key, half in (("full", False), ("half", True)):
            start, cpu_start = time.perf_counter(), time.process_time()
            with open_raw(path) as raw:
                decode_raw_linear(raw, half_size=half)
            out[key].append(time.perf_counter() - start)
            out[f"{key}_cpu"].append(time.process_time() - cpu_start)
    return out


# --- the peers ------------------------------------------------------------------------------


@dataclass
class PeerRun:
    wall_s: float | None = None
    outputs: int = 0
    long_edges: list[int] = field(default_factory=list)
    peak_mb: float = 0.0
    note: str = ""


def _run_sampled(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler(proc.pid).start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop()
    peak = max(sampler.peaks.values(), default=0) / MB
    return wall, peak, proc.returncode, output


def _outputs(folder: Path) -> tuple[int, list[int]]:
    from PIL import Image

    edges = []
    for p in sorted(folder.glob("*.jpg")):
        with Image.open(p) as im:
            edges.append(max(im.size))
    return len(edges), edges


def run_darktable(shoot: Path, work: Path, hq: bool) -> PeerRun:
    exe = shutil.which("darktable-cli")
    if exe is None:
        return PeerRun(note="darktable-cli not installed")
    out = work / "out"
    conf = work / "config"
    shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True)
    conf.mkdir()
    cmd = [exe, str(shoot), str(out / "$(FILE_NAME)"), "--width", str(LONG_EDGE), "--height", str(LONG_EDGE),
           "--hq", "true" if hq else "false", "--out-ext", "jpg", "--apply-custom-presets", "false",
           "--core", "--configdir", str(conf), "--library", ":memory:",
           "--conf", f"plugins/imageio/format/jpeg/quality={JPEG_QUALITY}"]
    wall, peak, rc, text = _run_sampled(cmd, work)
    n, edges = _outputs(out)
    return PeerRun(wall, n, edges, peak, "" if rc == 0 else f"exit {rc}")


def run_rawtherapee(files: list[Path], work: Path) -> PeerRun:
    exe = shutil.which("rawtherapee-cli")
    if exe is None:
        return PeerRun(note="rawtherapee-cli not installed")
    shutil.rmtree(work, ignore_errors=True)
    out = work / "out"
    out.mkdir(parents=True)
    # A partial profile over RawTherapee's neutral one: resize into a LONG_EDGE box, never enlarge.
    pp3 = work / "resize.pp3"
    pp3.write_text(
        "[Version]\nAppVersion=5.9\nVersion=349\n\n[Resize]\nEnabled=true\nScale=1\nAppliesTo=Cropped area\n"
        f"Method=Lanczos\nDataSpecified=3\nWidth={LONG_EDGE}\nHeight={LONG_EDGE}\nAllowUpscaling=false\n"
    )
    cmd = [exe, "-o", str(out), f"-j{JPEG_QUALITY}", "-Y", "-q", "-p", str(pp3), "-c", *map(str, files)]
    wall, peak, rc, text = _run_sampled(cmd, work)
    n, edges = _outputs(out)
    return PeerRun(wall, n, edges, peak, "" if rc == 0 else f"exit {rc}")


def tool_version(cmd: list[str]) -> str:
    try:
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "not installed"
    for line in text.splitlines():
        if "version" in line.lower() or "darktable" in line.lower():
            return line.strip()
    return text.strip().splitlines()[0] if text.strip() else "?"


# --- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = cpu_model()
    import cv2
    import numpy
    import rawpy
    import ray

    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": platform.python_version(),
        "versions": f"rawpy {rawpy.__version__} (LibRaw {rawpy.libraw_version}), numpy {numpy.__version__}, "
        f"opencv {cv2.__version__}, ray {ray.__version__}",
        "darktable": tool_version(["darktable-cli", "--version"]),
        "rawtherapee": tool_version(["rawtherapee-cli", "-v"]),
    }


# --- the table ----------------------------------------------------------------------------


@dataclass
class Row:
    set: str
    what: str
    s_per_image: float | None
    driver_mb: float | None = None
    worker_mb: float | None = None
    note: str = ""

    @property
    def per_min(self) -> float | None:
        return 60.0 / self.s_per_image if self.s_per_image else None


def fmt_table(rows: list[Row]) -> list[str]:
    head = f"| {'set':<10} | {'what':<44} | {'s/image':>8} | {'images/min':>10} | {'driver RSS MB':>13} | {'worker RSS MB':>13} | notes"
    lines = [head, "|" + "|".join("-" * n for n in (12, 46, 10, 12, 15, 15, 7)) + "|"]

    def num(v: float | None, f: str) -> str:
        return format(v, f) if v is not None else "-"

    for r in rows:
        lines.append(
            f"| {r.set:<10} | {r.what:<44} | {num(r.s_per_image, '8.3f'):>8} | {num(r.per_min, '10.1f'):>10} | "
            f"{num(r.driver_mb, '13.0f'):>13} | {num(r.worker_mb, '13.0f'):>13} | {r.note}"
        )
    return lines


def breakdown(pipe: dict[str, dict]) -> list[str]:
    """Where each postprod run spent its wall time (driver phases) and each worker its time (stages)."""
    lines = ["| set | run | ingest s | analysis s | plan s | render+export s | outputs s | "
             "per image in workers: stage seconds |", "|---|---|---|---|---|---|---|---|"]
    for label, res in pipe.items():
        for name, s in res["sets"].items():
            t = dict(s["phases"])
            keys = [k for k, _ in s["phases"]]
            if len(keys) < 3:
                continue
            a0, p0, r0 = (t[k] for k in keys[:3])
            render = s["wall_s"] - r0 - s["outputs_s"]
            stages = ", ".join(f"{k} {v:.3f}" for k, v in s["stage_s"].items())
            lines.append(f"| {name} | {label.replace('postprod, ', '')} | {a0:.2f} | {p0 - a0:.2f} | {r0 - p0:.2f} | "
                         f"{render:.2f} | {s['outputs_s']:.2f} | {stages} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 DNG and 2 real RAWs")
    ap.add_argument("--dng-count", type=int, default=6, help="24 MP DNG files to build and time (default 6)")
    ap.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS, help=f"cache of generated files ({DEFAULT_CORPUS})")
    ap.add_argument("--no-peers", action="store_true", help="skip darktable-cli and rawtherapee-cli")
    ap.add_argument("--no-equipment-row", action="store_true",
                    help="skip the local run without the equipment checks (what issue 15's stages cost)")
    ap.add_argument("--big-count", type=int, default=2, help="102 MP DNG files to build and time (default 2; 0: none)")
    ap.add_argument("--driver-scaling", action="store_true",
                    help="also run 100 and 10,000 small images through Ray and compare the driver's peak memory")
    ap.add_argument("--driver-counts", type=int, nargs=2, default=[100, 10_000], metavar=("SMALL", "LARGE"),
                    help="shoot sizes of --driver-scaling (default 100 10000)")
    ap.add_argument("--driver-scaling-only", action="store_true", help="only the driver's memory (--driver-counts)")
    ap.add_argument("--write-results", nargs="?", const=RESULTS_MD, type=Path, default=None, metavar="PATH",
                    help=f"write the table as Markdown ({RESULTS_MD.relative_to(ROOT)} when no PATH is given)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (outputs) and print its path")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="only the local executor's rows (with and without the equipment checks), each run by "
                    "CHECKOUT's code (e.g. a worktree of main) and by this one's, alternately, in this run; "
                    "with --write-results, a section with the side-by-side table is appended to the file")
    ap.add_argument("--rounds", type=int, default=2,
                    help="with --before: rounds of (before, after) runs; the fastest of each is kept (default 2)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0

    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(data / "models"))
    began = time.perf_counter()
    info = machine()
    print(f"postprod benchmark, {info['date']}: {info['cpus (nproc)']} CPUs ({info['cpu']}), {info['ram']} RAM")
    dng_count = 1 if args.quick else args.dng_count
    print(f"corpus in {args.corpus_dir}")
    dngs = build_dng_corpus(data, args.corpus_dir, dng_count)
    reals = real_raw_files(data)
    if args.quick:
        reals = [p for p in reals if p.suffix.upper() == ".CRW"][:2]
    if not reals:
        sys.exit(f"no RAW files under {data / 'raw'} (set POSTPROD_TESTDATA)")
    work = Path(tempfile.mkdtemp(prefix="postprod-bench-"))
    try:
        if args.before:
            lines = before_after(args.before.resolve(), {"24 MP DNG": dngs, "real RAW": reals}, work, args.rounds)
        elif args.driver_scaling_only:
            chart = work / "bench_chart.yaml"
            chart.write_text(BENCH_CHART)
            rows, where = [], []
            targets = driver_scaling(data, args.corpus_dir, work, chart, rows, tuple(args.driver_counts))
        else:
            rows, targets, where = run_all(args, data, work, {"24 MP DNG": dngs, "real RAW": reals})
    finally:
        if args.keep:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - began
    if args.before:
        print("\n" + "\n".join(lines))
        print(f"\nbenchmark wall time: {total:.0f} s")
        if args.write_results:
            append_before_after(args.write_results, info, lines, argv if argv is not None else sys.argv[1:], total)
            print(f"appended to {args.write_results}")
        return 0
    lines = fmt_table(rows)
    print()
    print("\n".join(lines))
    print()
    print("\n".join(where))
    print()
    for t in targets:
        print(t)
    print(f"\nbenchmark wall time: {total:.0f} s")
    if args.write_results:
        write_results(args.write_results, info, lines, where, targets, argv if argv is not None else sys.argv[1:], total,
                      {k: len(v) for k, v in {"24 MP DNG": dngs, "real RAW": reals}.items()})
        print(f"wrote {args.write_results}")
    return 0


def run_all(
    args: argparse.Namespace, data: Path, work: Path, corpora: dict[str, list[Path]]
) -> tuple[list[Row], list[str], list[str]]:
    # Shoot folders of links, so every tool reads the same bytes from the same place.
    sets: dict[str, Path] = {}
    for i, (name, files) in enumerate(corpora.items()):
        sets[name] = link_shoot(work / f"shoot_{i}", files)
    chart = work / "bench_chart.yaml"
    chart.write_text(BENCH_CHART)

    rows: list[Row] = []
    floor: dict[str, dict[str, list[float]]] = {}
    print("timing LibRaw alone ...")
    for name, files in corpora.items():
        floor[name] = time_floor(files)
    pipe: dict[str, dict] = {}
    for label, executor, workers, threads in PIPELINE_CONFIGS:
        print(f"timing {label} ...")
        pipe[label] = run_child(executor, workers, sets, work, chart, f"{executor}{workers}t{threads}", threads=threads)
    peers: dict[str, dict[str, PeerRun]] = {}
    if not args.no_peers:
        for name, folder in sets.items():
            print(f"timing darktable-cli and rawtherapee-cli on {name} ...")
            peers[name] = {
                "darktable-cli (hq, its default)": run_darktable(folder, work / f"dt_hq_{len(peers)}", hq=True),
                "darktable-cli --hq false": run_darktable(folder, work / f"dt_fast_{len(peers)}", hq=False),
                "rawtherapee-cli (neutral + resize)": run_rawtherapee(corpora[name], work / f"rt_{len(peers)}"),
            }

    for name, files in corpora.items():
        n = len(files)
        f = floor[name]
        # LibRaw's own OpenMP threads: every CPU (the CPU seconds are in floor[name]["full_cpu"]).
        rows.append(Row(name, f"LibRaw decode, full size ({n} files)", sum(f["full"]) / n,
                        note="floor; LibRaw's OpenMP threads"))
        rows.append(Row(name, "LibRaw decode, half size", sum(f["half"]) / n, note="LibRaw's OpenMP threads"))
        for label, *_ in PIPELINE_CONFIGS:
            res = pipe[label]
            s = res["sets"][name]
            notes = []
            if s["failed"]:
                notes.append(f"{len(s['failed'])} failed")
            if "ray_init_s" in res:
                notes.append(f"+ Ray start {res['ray_init_s']:.1f} s, stop {res.get('ray_shutdown_s', 0):.1f} s (not counted)")
            if s["worker_startup_s"]:
                notes.append("worker start-up " + "/".join(f"{x:.1f}" for x in s["worker_startup_s"]) + " s (counted)")
            is_local = s["executor"].startswith("local")
            if executor_of(label) == "auto":
                notes.insert(0, "ran " + s["executor"].split(" (")[0])
            if is_local:
                notes.append("worker = driver")
            rows.append(Row(name, label, s["wall_s"] / max(1, s["ok"]), s["driver_mb"],
                            s["driver_mb"] if is_local else s["worker_max_mb"], "; ".join(notes)))
        for label, run in peers.get(name, {}).items():
            if run.wall_s is None or run.outputs == 0:
                rows.append(Row(name, label, None, note=run.note or "no output"))
                continue
            edges = sorted(set(run.long_edges))
            note = f"{run.outputs}/{n} exported (s/image over those), long edge {','.join(map(str, edges))} px; all cores"
            if run.note:
                note += f"; {run.note}"
            rows.append(Row(name, label, run.wall_s / run.outputs, None, run.peak_mb, note))

    targets = evaluate_targets(corpora, floor, pipe, peers)
    if not args.no_equipment_row:
        targets += without_equipment(sets, work, chart, floor, corpora, pipe, rows)
    print(f"timing a {SMALL_SHOOT_FILES}-file shoot end to end with each executor ...")
    targets.append(small_shoot_end_to_end(corpora["real RAW"], work, chart, rows))
    if args.big_count > 0 and not args.quick:
        targets += big_sensor(data, args.corpus_dir, work, args.big_count, rows)
    else:
        targets.append("[----] 100 MP in bounded memory: not run (--big-count 0 or --quick)")
    if args.driver_scaling:
        targets += driver_scaling(data, args.corpus_dir, work, chart, rows, tuple(args.driver_counts))
    else:
        targets.append("[----] driver memory flat in the shoot's size: not run (add --driver-scaling)")
    return rows, targets, breakdown(pipe)


NO_EQUIPMENT_LABEL = "postprod, local executor, 1 worker, no equipment checks"


def without_equipment(sets: dict[str, Path], work: Path, chart: Path, floor: dict, corpora: dict[str, list[Path]],
                      pipe: dict, rows: list[Row]) -> list[str]:
    """The local row again with the default graph less issue 15's checks: what they cost, in the same run.

    The graph drops ``inspect_equipment`` and turns off ``decode_raw``'s photosite scan; every other
    stage and parameter is the default's.
    """
    import yaml

    graph = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    graph["name"] = "default-without-equipment"
    graph["stages"] = [s for s in graph["stages"] if s["stage"] != "inspect_equipment"]
    for s in graph["stages"]:
        if s["stage"] == "decode_raw":
            s.setdefault("params", {})["scan_photosites"] = False
    path = work / "graph_without_equipment.yaml"
    path.write_text(yaml.safe_dump(graph, sort_keys=False))
    print(f"timing {NO_EQUIPMENT_LABEL} ...")
    res = run_child("local", 1, sets, work, chart, "noequip", graph=path)
    pipe[NO_EQUIPMENT_LABEL] = res
    out = []
    local = PIPELINE_CONFIGS[0][0]
    for name, files in corpora.items():
        s, with_eq = res["sets"][name], pipe[local]["sets"][name]
        per, per_eq = s["wall_s"] / max(1, s["ok"]), with_eq["wall_s"] / max(1, with_eq["ok"])
        half = sum(floor[name]["half"]) / len(files)
        full = sum(floor[name]["full"]) / len(files)
        rows.append(Row(name, NO_EQUIPMENT_LABEL, per, s["driver_mb"], s["driver_mb"],
                        "inspect_equipment left out, decode_raw's photosite scan off; worker = driver"))
        out.append(f"[info] {name}: without issue 15's equipment checks one worker takes {per:.3f} s/image = "
                   f"{per / half:.2f}x LibRaw's half-size decode, {per / full:.2f}x its full-size decode; with them "
                   f"{per_eq:.3f} s/image (+{per_eq - per:.3f} s, {per_eq / per:.2f}x)")
    return out


def executor_of(label: str) -> str:
    return next(e for lab, e, *_ in PIPELINE_CONFIGS if lab == label)


def evaluate_targets(corpora: dict[str, list[Path]], floor: dict, pipe: dict, peers: dict) -> list[str]:
    out = []

    def tagged(ok: bool) -> str:
        return f"[{verdict(ok)}]"

    local, auto, ray1, ray2, one_thread = (label for label, *_ in PIPELINE_CONFIGS)
    names = list(corpora)
    big, small = names[0], names[1]  # the 24 MP set, the real (small) RAWs
    n = len(corpora[big])
    half = sum(floor[big]["half"]) / n
    s = pipe[local]["sets"][big]
    per = s["wall_s"] / max(1, s["ok"])
    out.append(f"{tagged(per <= HALF_FLOOR_RATIO_MAX * half)} {big}: one worker {per:.3f} s/image = "
               f"{per / half:.2f}x LibRaw's half-size decode ({half:.3f} s); target <= {HALF_FLOOR_RATIO_MAX}x")
    full = sum(floor[big]["full"]) / n
    out.append(f"[info] {big}: one worker = {per / full:.2f}x LibRaw's full-size decode ({full:.3f} s)")
    out.append(one_thread_line(big, pipe, local, one_thread, half, "half-size"))
    full = sum(floor[small]["full"]) / len(corpora[small])
    s = pipe[local]["sets"][small]
    per = s["wall_s"] / max(1, s["ok"])
    out.append(f"{tagged(per <= SMALL_FLOOR_RATIO_MAX * full)} {small}: one worker {per:.3f} s/image = "
               f"{per / full:.2f}x LibRaw's full-size decode ({full:.3f} s); target <= {SMALL_FLOOR_RATIO_MAX}x")
    out.append(one_thread_line(small, pipe, local, one_thread, full, "full-size"))
    rt = peers.get(small, {}).get("rawtherapee-cli (neutral + resize)")
    if rt and rt.outputs:
        theirs = rt.outputs / rt.wall_s * 60
        for label in (auto, ray2):
            a = pipe[label]["sets"][small]
            ours = a["ok"] / a["wall_s"] * 60
            ran = f"; ran {a['executor']}" if label == auto else ""
            out.append(f"{tagged(ours > theirs) if label == auto else '[info]'} {small}: {label.replace('postprod, ', '')} "
                       f"{ours:.1f} images/min = {ours / theirs:.2f}x rawtherapee-cli ({theirs:.1f} images/min, all "
                       f"cores{ran}); target > 1x for the default")
    else:
        out.append(f"[----] {small}: against rawtherapee-cli: not run")
    for name in names:
        best = pipe[ray2]["sets"][name]
        ours = best["ok"] / best["wall_s"] * 60
        dt = {k: v for k, v in peers.get(name, {}).items() if k.startswith("darktable") and v.outputs}
        if not dt:
            out.append(f"[----] {name}: throughput against darktable-cli: darktable-cli not run")
            continue
        fastest_label, fastest = min(dt.items(), key=lambda kv: kv[1].wall_s / kv[1].outputs)
        theirs = fastest.outputs / fastest.wall_s * 60
        out.append(f"[info] {name}: postprod (Ray, 2 workers) {ours:.1f} images/min = {ours / theirs:.2f}x the faster "
                   f"darktable-cli ({fastest_label}, {theirs:.1f} images/min, all cores); issue 6's target >= "
                   f"{PEER_SPEEDUP_MIN}x")
    for name in names:
        a, b = pipe[ray1]["sets"][name], pipe[ray2]["sets"][name]
        speedup = (b["ok"] / b["wall_s"]) / (a["ok"] / a["wall_s"])
        out.append(f"[info] {name}: Ray 2 workers / 1 worker throughput = {speedup:.2f}x ({a['wall_s']:.1f} s -> "
                   f"{b['wall_s']:.1f} s for {b['ok']} images, worker start-up included; 2 CPUs: see scaling.sh)")
    peak = max(pipe[label]["sets"][big]["worker_max_mb"] for label in (ray1, ray2))
    out.append(f"{tagged(peak <= WORKER_RSS_MAX_MB)} {big}: peak RSS per Ray worker {peak:.0f} MB; "
               f"target <= {WORKER_RSS_MAX_MB:.0f} MB")
    return out


def one_thread_line(name: str, pipe: dict, local: str, one_thread: str, floor_s: float, floor_kind: str) -> str:
    """The local executor on one thread an image (a Ray worker's way, and the local one's before 2026-12-06)
    against its default of every CPU, in the same run: what the threads and the parts run beside each other give."""
    a, b = pipe[one_thread]["sets"][name], pipe[local]["sets"][name]
    one, every = a["wall_s"] / max(1, a["ok"]), b["wall_s"] / max(1, b["ok"])
    cpu_one, cpu_every = a["cpu_s"] / max(1, a["ok"]), b["cpu_s"] / max(1, b["ok"])
    return (f"[info] {name}: one worker on 1 thread {one:.3f} s/image = {one / floor_s:.2f}x LibRaw's {floor_kind} "
            f"decode; on every CPU (the local default) {every:.3f} s/image, {one / every:.2f}x faster; CPU s/image "
            f"{cpu_one:.3f} -> {cpu_every:.3f}")


def small_shoot_end_to_end(files: list[Path], work: Path, chart: Path, rows: list[Row]) -> str:
    """``postprod process`` on a 6-file shoot as a user runs it, per executor: Python's and Ray's start counted."""
    files = files[:SMALL_SHOOT_FILES]
    shoot = link_shoot(work / "small_shoot", files)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("RAY_AUTH_MODE", None)  # as a user has it: the token notice must stay off the output
    walls: dict[str, float] = {}
    for executor, repeats in (("local", 2), ("auto", 2), ("ray", 1)):
        best, said, notices = float("inf"), "", 0
        for i in range(repeats):
            out = work / f"small_shoot_out_{executor}_{i}"
            cmd = [sys.executable, "-m", "pipeline.cli", "process", str(shoot), "--out", str(out), "--chart", str(chart),
                   "--executor", executor, "--no-progress", "--follow-external-symlinks"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode not in (0, 3):
                raise RuntimeError(f"postprod process --executor {executor} failed:\n{proc.stderr[-3000:]}")
            best = min(best, wall)
            said = next((ln for ln in proc.stderr.splitlines() if ln.startswith("executor:")), said)
            notices += sum("Token authentication" in ln for ln in proc.stderr.splitlines())
        walls[executor] = best
        note = said.removeprefix("executor: ") + (f"; Ray's token notice printed {notices}x" if notices else "")
        rows.append(Row(f"{len(files)}-file", f"postprod process, --executor {executor}, end to end",
                        best / len(files), note=f"{best:.1f} s in all (best of {repeats}); {note}"))
    ratio = walls["auto"] / walls["local"]
    return (f"[{verdict(ratio <= SMALL_SHOOT_MAX)}] {len(files)}-file shoot end to end: default "
            f"(auto) {walls['auto']:.1f} s = {ratio:.2f}x the local executor ({walls['local']:.1f} s; Ray "
            f"{walls['ray']:.1f} s); target <= {SMALL_SHOOT_MAX}x")


def _sampled_python(code: str, work: Path) -> tuple[float, float]:
    """Seconds ``code`` reports (its last line) and the peak RSS (MB) of ``python -c code`` (LibRaw on a big file)."""
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    wall, peak, rc, text = _run_sampled(["env", f"PYTHONPATH={env_path}", sys.executable, "-c", code], work)
    if rc != 0:
        raise RuntimeError(f"LibRaw alone failed:\n{text[-2000:]}")
    return float(text.strip().splitlines()[-1]), peak


def big_sensor(data: Path, corpus_dir: Path, work: Path, count: int, rows: list[Row]) -> list[str]:
    """102 MP DNGs with a full-resolution 16-bit master: one process's peak RSS, against LibRaw's decode."""
    files = build_large_dng_corpus(data, corpus_dir, count)
    mp = files[0].stem.split("mp")[0].removeprefix("bench")
    floor: dict[str, list[tuple[float, float]]] = {"full": [], "half": []}
    print(f"timing LibRaw alone on {len(files)} {mp} MP DNGs (one process each) ...")
    for f in files:
        for key, half in (("full", False), ("half", True)):
            code = ("import time\nfrom pathlib import Path\nfrom pipeline.imaging.decode import decode_raw_linear, open_raw\n"
                    f"t = time.perf_counter()\nwith open_raw(Path({str(f)!r})) as raw:\n"
                    f"    decode_raw_linear(raw, half_size={half})\nprint(time.perf_counter() - t)\n")
            floor[key].append(_sampled_python(code, work))
    shoot = link_shoot(work / "big_shoot", files)
    chart = work / "big_chart.yaml"
    chart.write_text(BIG_CHART)
    print(f"timing postprod on the {mp} MP DNGs (full-resolution 16-bit TIFF master, in one process) ...")
    res = run_child("local", 1, {f"{mp} MP DNG": shoot}, work, chart, "big")
    s = res["sets"][f"{mp} MP DNG"]
    n = len(files)
    full_s = sum(t for t, _ in floor["full"]) / n
    full_mb = max(m for _, m in floor["full"])
    half_s = sum(t for t, _ in floor["half"]) / n
    half_mb = max(m for _, m in floor["half"])
    per = s["wall_s"] / max(1, s["ok"])
    name = f"{mp} MP DNG"
    rows.append(Row(name, f"LibRaw decode, full size ({n} files)", full_s, worker_mb=full_mb,
                    note="floor; 1 thread; RSS of its own process"))
    rows.append(Row(name, "LibRaw decode, half size", half_s, worker_mb=half_mb, note="1 thread; RSS of its own process"))
    rows.append(Row(name, "postprod, local executor, 1 worker", per, s["driver_mb"], s["driver_mb"],
                    f"{s['ok']} ok, {s['exports']} files: 16-bit TIFF master, 8x10 crop, proof; worker = driver"))
    return [
        f"[{verdict(s['driver_mb'] <= WORKER_RSS_MAX_MB)}] {name}: peak RSS of the one process "
        f"(worker and driver) {s['driver_mb']:.0f} MB with a full-resolution 16-bit TIFF master (LibRaw's whole "
        f"decode alone peaks at {full_mb:.0f} MB); target <= {WORKER_RSS_MAX_MB:.0f} MB",
        f"[info] {name}: {per:.2f} s/image = {per / full_s:.2f}x LibRaw's full-size decode of the same files "
        f"({full_s:.2f} s), {per / half_s:.2f}x its half-size decode ({half_s:.2f} s)",
    ]


def driver_scaling(data: Path, corpus_dir: Path, work: Path, chart: Path, rows: list[Row],
                   counts: tuple[int, int] = (100, 10_000)) -> list[str]:
    """The driver's peak RSS on a small and a large shoot of small distinct images (Ray, 2 workers), and
    the large run's throughput, time to first export and serial parts."""
    results = {}
    for count in counts:
        folder = build_small_corpus(data, corpus_dir, count)
        print(f"timing the driver on {count} small images ...", flush=True)
        res = run_child("ray", 2, {f"{count} small": folder}, work, chart, f"scale{count}")
        s = res["sets"][f"{count} small"]
        results[count] = s
        rows.append(Row(f"{count} small", "postprod, Ray, 2 workers (driver memory)", s["wall_s"] / max(1, s["ok"]),
                        s["driver_mb"], s["worker_max_mb"],
                        f"{s['ok']} ok; 96x64 px JPEGs, distinct content; first export at {s['first_export_s']:.1f} s"))
    lo, hi = counts
    a, b = results[lo]["driver_mb"], results[hi]["driver_mb"]
    a0, b0 = results[lo]["driver_sampled_mb"], results[hi]["driver_sampled_mb"]
    per_image_kb = (b - a) * 1024 / (hi - lo)
    big = results[hi]
    t = dict(big["phases"])
    keys = [k for k, _ in big["phases"]]
    ingest = t[keys[0]]
    plan = t[keys[2]] - t[keys[1]] if len(keys) > 2 else 0.0
    return [
        f"[{verdict(b <= DRIVER_GROWTH_MAX * a)}] driver peak RSS {a:.0f} MB at {lo:,} images, {b:.0f} MB at "
        f"{hi:,} ({b / a:.2f}x, {per_image_kb:.1f} KB per extra image); target <= {DRIVER_GROWTH_MAX:.2f}x",
        f"[info] driver peak RSS sampled every 0.1 s (the figure of runs before V): {a0:.0f} MB at {lo:,} images, "
        f"{b0:.0f} MB at {hi:,} ({b0 / a0:.2f}x); the figure above is the kernel's high-water mark (VmHWM) where "
        "Linux keeps it",
        f"[info] {hi:,} images: {big['ok'] / big['wall_s'] * 60:.0f} images/min ({big['wall_s']:.0f} s), first export "
        f"after {big['first_export_s']:.1f} s",
        f"[info] {hi:,} images, the driver's serial parts: hashing and scan {ingest:.2f} s, planning {plan:.2f} s, "
        f"journal {big['journal_s']:.2f} s, outputs (manifest, instructions, sheets, report) {big['outputs_s']:.2f} s: "
        f"{(ingest + plan + big['journal_s'] + big['outputs_s']) / hi * 1000:.2f} ms an image",
    ]


def before_after(before: Path, corpora: dict[str, list[Path]], work: Path, rounds: int) -> list[str]:
    """The local executor's rows run by another checkout's code and by this one's, side by side.

    Both run the same files, chart and graph in the same benchmark run,
    alternately (before, after; then after, before; ...), each run a fresh
    process; the fastest round of each is kept, and ratios to LibRaw's
    floor (timed in this run too) are what compares across machines.
    """
    import yaml

    if not (before / "benchmarks" / "run.py").is_file() or not (before / "pipeline").is_dir():
        sys.exit(f"--before {before}: not a postprod checkout (no benchmarks/run.py and pipeline/)")
    sets = {name: link_shoot(work / f"shoot_{i}", files) for i, (name, files) in enumerate(corpora.items())}
    chart = work / "bench_chart.yaml"
    chart.write_text(BENCH_CHART)
    print("timing LibRaw alone ...")
    floor = {name: time_floor(files) for name, files in corpora.items()}
    variants = ("with the equipment checks", "without them")
    # The default graph less issue 15's checks, as without_equipment() runs it (each checkout's own default).
    for side, code in (("before", before), ("after", ROOT)):
        graph = yaml.safe_load((code / "configs" / "default.yaml").read_text())
        graph["stages"] = [st for st in graph["stages"] if st["stage"] != "inspect_equipment"]
        for st in graph["stages"]:
            if st["stage"] == "decode_raw":
                st.setdefault("params", {})["scan_photosites"] = False
        path = work / f"graph_without_equipment_{side}.yaml"
        path.write_text(yaml.safe_dump(graph, sort_keys=False))
    best: dict[tuple[str, str, str, str], float] = {}
    # Each stage's seconds per image in the round whose wall time was kept (per set, graph and side).
    stages_of: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in range(max(1, rounds)):
        for variant in variants:
            # Each side goes first in every other round: neither always meets the colder machine.
            for side, code in (("before", before), ("after", ROOT))[:: 1 if r % 2 == 0 else -1]:
                print(f"round {r + 1}: {side} ({code}), {variant} ...")
                graph = None if variant.startswith("with ") else work / f"graph_without_equipment_{side}.yaml"
                res = run_child("local", 1, sets, work, chart, f"{side}{r}{variant[:4]}", graph=graph, code=code)
                for name, s in res["sets"].items():
                    if s["failed"]:
                        sys.exit(f"{side}: {len(s['failed'])} failed on {name}: {s['failed'][:2]}")
                    for what in ("wall_s", "cpu_s"):
                        per = s[what] / max(1, s["ok"])
                        key = (name, variant, side, what)
                        if what == "wall_s" and per < best.get(key, float("inf")):
                            stages_of[name, variant, side] = s["stage_s"]
                        best[key] = min(best.get(key, per), per)
    lines = [
        f"Before: `{before}` ({_git_head(before)}); after: `{ROOT}` ({_git_head(ROOT)}). Local executor, "
        f"1 worker; fastest of {max(1, rounds)} alternating rounds; floors: LibRaw in this process, same files. "
        "CPU: the process's CPU seconds (all its threads; a loaded machine stretches wall time far more).",
        "",
        "| set | graph | wall s/image before / after | CPU s/image before / after | CPU after / before | "
        "x floor, wall: before / after | x floor, CPU: before / after | floor (LibRaw) wall / CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, files in corpora.items():
        n = len(files)
        # Issue 16's floors: the 24 MP set against the half-size decode, the small RAWs against the full one.
        kind = "half" if name == "24 MP DNG" else "full"
        f, fc = sum(floor[name][kind]) / n, sum(floor[name][f"{kind}_cpu"]) / n
        for variant in variants:
            bw, aw, bc, ac = (best[(name, variant, side, what)] for what in ("wall_s", "cpu_s")
                              for side in ("before", "after"))
            lines.append(f"| {name} ({n}) | {variant} | {bw:.3f} / {aw:.3f} | {bc:.3f} / {ac:.3f} | {ac / bc:.2f} | "
                         f"{bw / f:.2f}x / {aw / f:.2f}x | {bc / fc:.2f}x / {ac / fc:.2f}x | "
                         f"{kind} size {f:.3f} / {fc:.3f} |")
    # Per stage (wall seconds per image, the runner's own timing), from the kept round of each side.
    lines += ["", "Per stage, wall s/image before / after (the kept rounds; the rest of each run's time is the "
              "driver's: scan, hashing, planning, journal, outputs):", ""]
    for name in corpora:
        for variant in variants:
            b, a = stages_of[name, variant, "before"], stages_of[name, variant, "after"]
            names = list(dict.fromkeys([*b, *a]))
            lines.append(f"- {name}, {variant}: " + "; ".join(
                f"{st} {b.get(st, 0.0):.3f} / {a.get(st, 0.0):.3f}" for st in names)
                + f"; all stages {sum(b.values()):.3f} / {sum(a.values()):.3f}")
    return lines


def _git_head(code: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    except OSError:
        return "git not found"
    return out.stdout.strip()[:72] or "not a git checkout"


def append_before_after(path: Path, info: dict[str, str], lines: list[str], argv: list[str], total: float) -> None:
    """Append the side-by-side table to ``path`` as a dated section (the rest of the file is left as it is)."""
    cmd = "PYTHONPATH=$PWD python benchmarks/run.py " + " ".join(argv)
    section = [
        "",
        f"## Before/after, {info['date']}",
        "",
        f"`{cmd.strip()}` on {info['cpus (nproc)']} CPUs ({info['cpu']}), {total:.0f} s.",
        "",
        *lines,
        "",
    ]
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(section))


def write_results(path: Path, info: dict[str, str], table: list[str], where: list[str], targets: list[str],
                  argv: list[str],
                  total: float, counts: dict[str, int]) -> None:
    cmd = "PYTHONPATH=$PWD python benchmarks/run.py " + " ".join(argv)
    lines = [
        "# Benchmark results",
        "",
        f"Measured {info['date']} with",
        "",
        "```sh",
        cmd.strip(),
        "```",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items() if k != "date"),
        "",
        f"Files: {', '.join(f'{n} {k}' for k, n in counts.items())}. Each postprod row is one process "
        "(`process_shoot` with the benchmark chart: a 2048 px JPEG and a 1080 px WebP per image) from ingest to "
        "report; s/image is its wall time over the images. Ray's own start and stop are not counted (noted) when "
        "the row asks for Ray; its workers' start-up is; the auto row counts whatever its choice costs. The "
        "peers run once per set, start-up included, on all cores. RSS is the peak resident memory sampled every "
        "0.1 s. The 6-file rows are `postprod process` run as a user runs it (Python's and Ray's start counted, "
        "RAY_AUTH_MODE unset). The 102 MP rows: DNGs of 11648x8736 from real photos (benchmarks/corpus.py) with "
        "a full-resolution 16-bit Adobe RGB TIFF master, an 8x10 crop and a 1600 px proof, in one process (the "
        "local executor: its RSS is the worker's and the driver's); LibRaw alone runs in its own process. Driver "
        "memory (`--driver-scaling`): 96x64 px JPEGs with distinct content (crops of a real photo with seeded "
        "grain) through Ray with 2 workers; the driver process's own peak RSS is compared (workers and Ray's "
        "servers excluded).",
        "",
        *table,
        "",
        "Where the time goes: the driver's phases of each run (seconds, whole set) and the workers' mean seconds "
        "per image in each stage.",
        "",
        *where,
        "",
        "## Targets",
        "",
        *(f"- {t}" for t in targets),
        "",
        f"Benchmark wall time: {total:.0f} s.",
        "",
    ]
    # A hand-written "## Notes" section of an earlier file (reading the numbers) is kept.
    try:
        previous = path.read_text(encoding="utf-8")
    except OSError:
        previous = ""
    notes = previous[previous.find("## Notes"):] if "## Notes" in previous else ""
    path.write_text("\n".join(lines) + ("\n" + notes if notes else ""), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
