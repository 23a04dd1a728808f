"""The XMP copies of a shoot's DNGs (the form Lightroom imports): written here against exiftool, in one run.

``pipeline.outputs.xmp.embed_packets`` patches a DNG, TIFF or JPEG itself
(:mod:`pipeline.outputs.xmp_embed`); the baseline is the same copies written by
exiftool, one process for all of them, as every copy was before. Both flush
their copies to disk before naming them. Rounds alternate the two; the table
gives the best and every round, per copy, and the ratio.

Files: the 24 MP DNGs of ``benchmarks/run.py``'s corpus (built there, read here
from ``--corpus-dir``), or any DNG, TIFF or JPEG files given as arguments.

    python benchmarks/xmp_copies.py [--rounds 4] [--corpus-dir DIR] [FILE ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.outputs.xmp import embed_packets  # noqa: E402

PACKET = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
          '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
          'xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" crs:Exposure2012="+0.50"/></rdf:RDF>'
          '</x:xmpmeta>\n<?xpacket end="w"?>')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--corpus-dir", type=Path, default=Path.home() / ".cache" / "postprod" / "bench")
    args = parser.parse_args(argv)
    files = args.files or sorted(args.corpus_dir.glob("bench24mp_*.dng"))
    if not files:
        parser.error(f"no files: run benchmarks/run.py once to build the 24 MP DNGs in {args.corpus_dir}")
    if shutil.which("exiftool") is None:
        parser.error("exiftool is not installed (apt-get install libimage-exiftool-perl): it is the baseline")
    work = Path(tempfile.mkdtemp(prefix="xmp_copies."))
    try:
        packet = work / "packet.xmp"
        packet.write_text(PACKET, encoding="utf-8")
        ways = {"exiftool (baseline)": lambda jobs: embed_packets(jobs, exiftool_only=True),
                "postprod (xmp_embed)": embed_packets}
        times: dict[str, list[float]] = {name: [] for name in ways}
        for r in range(args.rounds):
            for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                out = work / f"{r}-{len(times[name])}-{name.split()[0]}"
                jobs = [(f, packet, out / f.name) for f in files]
                t0 = time.perf_counter()
                failed = ways[name](jobs)
                times[name].append((time.perf_counter() - t0) / len(files))
                if failed:
                    print(f"{name}: failed {failed}", file=sys.stderr)
                    return 1
                shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb = sum(f.stat().st_size for f in files) / len(files) / 1e6
    base = min(times["exiftool (baseline)"])
    print(f"{len(files)} files, {mb:.1f} MB each on average; {args.rounds} alternating rounds\n")
    print("| copies written by | ms per copy, best | every round | x baseline |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {min(ts) * 1000:.0f} | {', '.join(f'{t * 1000:.0f}' for t in ts)} | {min(ts) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
