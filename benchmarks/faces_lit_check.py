"""Lit faces given a lift, on tuning material only: the accuracy benchmark's tuning items and shared photos.

The faces rule's worst decision is a lift on a lit face. This script counts
it, beside the shadowed faces found and their amounts, on:

* the accuracy benchmark's *tuning-split* items with faces (its cache's
  corpus, ``POSTPROD_ACCURACY_CACHE``): the shadow twins, the published
  photos as they are, and the edge crops (the held-out split's lines of the
  benchmark's "lit faces given a lift"); held-out items are never read;
* photos with people that are in no split of the benchmark's pool, as
  published: the shared ones (:data:`SHARED_PUBLISHED`; the pool's PASCAL VOC
  photos are held-out sources and stay out), insightface's sample group
  photo and masked faces (:data:`PACKAGE_PUBLISHED`) and opencv-doc's messi5
  (:data:`EXTRA_PUBLISHED`, the benchmark's extra tuning photos). No face in
  them is known to need a lift: every lift is listed, to be looked at.

It runs postprod's analysis and plan (chart ``base``) once and, with
``--dump``, pickles the records; ``--from-dump`` plans them again with the
rules as they are now (a planning change's figures in seconds).

Usage::

    python benchmarks/faces_lit_check.py [--work DIR] [--dump FILE]
    python benchmarks/faces_lit_check.py --from-dump FILE
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import analysis_graph, match_faces  # noqa: E402
from benchmarks.accuracy_corpus import _package_file, fetch_extra_tuning_photos  # noqa: E402

#: Shared photos with people outside the accuracy benchmark's pool (the pool's PASCAL VOC photos are
#: held-out sources and stay out), read as published.
SHARED_PUBLISHED = (
    "exposure/Justin Chiaratti-CC BY-NC-SA 2.0.jpg",
    "exposure/a0716-MB_20030906_030_P1.5.JPG",
    "exposure/a0964-20061224_140610__E6B7217_N1.5.JPG",
    "exposure/a1359-NKIM_MG_6126_N1.5.JPG",
    "exposure/a2192-IMG_2045_P1.5.JPG",
    "exposure/a2490-WP_CRW_3690_N1.5.JPG",
    "exposure/a3354-MB_070908_069_P1.5.JPG",
    "exposure/a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG",
    "wb/Flcikr_Rhett_Sutphin_CC_BY_2.0.jpg",
    "wb/Flickr_Alpha_CC BY-SA_2.0.jpg",
    "wb/Flickr_Christopher_Schmidt_CC_BY_2.0.jpg",
    "wb/Flickr_Davis_Doherty_CC_BY_2.0.jpg",
    "wb/Flickr_Rhett_Sutphin_CC_BY_2.0__.jpg",
    "wb/Flickr_quiddle_CC BY-SA_2.0.jpg",
    "wb/Pexels_dot_com_Isadora_Menezes.jpg",
)
#: Photos with people from installed packages and Debian's opencv-doc (the accuracy benchmark's extra
#: tuning photos), in no split of its pool: (module, path in it) or the extra photo's file name.
PACKAGE_PUBLISHED = (("insightface", "data/images/t1.jpg"), ("insightface", "data/images/mask_black.jpg"),
                     ("insightface", "data/images/mask_blue.jpg"), ("insightface", "data/images/mask_white.jpg"))
EXTRA_PUBLISHED = ("opencv_messi5.jpg",)
#: A face counts as shadowed at this depth at its centre (the benchmark's rule), as lit under 0.1 EV.
SHADOWED_AT_EV, LIT_BELOW_EV = 0.5, 0.1


def tuning_items(cache: Path) -> list[dict[str, Any]]:
    """The benchmark corpus's tuning-split items with faces: shadow twins, published photos, edge crops."""
    manifest = json.loads((cache / "corpus" / "manifest.json").read_text())
    return [i for i in manifest["items"] if i["split"] == "tuning" and i["truth"].get("faces")
            and (i["set"] in ("shadow", "edge") or (i["set"] == "original" and i["render"] == "published"))]


def make_shoot(cache: Path, data: Path, shoot: Path, extra_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Link the items and the photos outside the pool into ``shoot``: (name -> corpus item, names of those photos)."""
    if shoot.exists():
        shutil.rmtree(shoot)
    shoot.mkdir(parents=True)
    items = {}
    for item in tuning_items(cache):
        name = f"{item['id']}{Path(item['file']).suffix}"
        os.link(cache / "corpus" / item["file"], shoot / name)
        items[name] = item
    shared = []
    for rel in SHARED_PUBLISHED:
        if (data / rel).is_file():
            name = "shared_" + rel.replace("/", "_").replace(" ", "_")
            shutil.copyfile(data / rel, shoot / name)
            shared.append(name)
    for module, rel in PACKAGE_PUBLISHED:
        path = _package_file(module, rel)
        if path is not None:
            name = f"pkg_{module}_{Path(rel).name}"
            shutil.copyfile(path, shoot / name)
            shared.append(name)
    extra = {p.name: p for p in fetch_extra_tuning_photos(extra_dir)}
    for name in EXTRA_PUBLISHED:
        if name in extra:
            shutil.copyfile(extra[name], shoot / f"extra_{name}")
            shared.append(f"extra_{name}")
    return items, shared


def _lifts(record: Any) -> dict[int, float]:
    return {int(o.params["face_index"]): float(o.params["ev"]) for o in record.operations
            if str(o.kind) == "brighten_face"}


def figures(records: dict[str, Any], items: dict[str, dict[str, Any]], shared: list[str]) -> list[str]:
    """Per set: shadowed faces found, amounts within 0.3 EV, lit faces lifted; then every lift on a shared photo."""
    lines = []
    for label, pick in (("shadow twins", lambda i: i["set"] == "shadow"),
                        ("published photos", lambda i: i["set"] == "original"),
                        ("edge crops", lambda i: i["set"] == "edge")):
        found = n = within = lit = lifted = checked = 0
        errs = []
        for name, item in items.items():
            r = records.get(name)
            if not pick(item) or r is None or r.status != "ok":
                continue
            lifts = _lifts(r)
            checks = {int(o.params["face_index"]) for o in r.operations if o.params.get("check") == "face_shadow"}
            det = [([f.x, f.y, f.width, f.height], lifts.get(k)) for k, f in enumerate(r.faces)]
            for t, j in zip(item["truth"]["faces"], match_faces(item["truth"]["faces"], det)):
                amount = None if j is None else det[j][1]
                if t["shadow_ev"] >= SHADOWED_AT_EV:
                    n += 1
                    found += amount is not None
                    if amount is not None:
                        errs.append(amount - t["shadow_ev"])
                        within += abs(amount - t["shadow_ev"]) <= 0.3
                elif t["shadow_ev"] < LIT_BELOW_EV:
                    lit += 1
                    lifted += amount is not None
                    checked += j is not None and j in checks
                    if amount is not None:
                        lines.append(f"    lit face lifted: {name} face {j} by {amount:.2f} EV")
        med = f", median |error| {statistics.median(abs(e) for e in errs):.2f}" if errs else ""
        lines.append(f"  tuning {label}: found {found} of {n}, within 0.3 EV {within} of {n}{med}; "
                     f"lit faces lifted {lifted} of {lit} (checked instead {checked})")
    n_faces = n_lifted = n_checked = 0
    for name in shared:
        r = records.get(name)
        if r is None or r.status != "ok":
            lines.append(f"    {name}: {'missing' if r is None else r.error}")
            continue
        n_faces += sum(1 for f in r.faces if not f.too_small)
        for k, ev in sorted(_lifts(r).items()):
            n_lifted += 1
            lines.append(f"    shared photo lift: {name} face {k} by {ev:.2f} EV")
        for o in r.operations:
            if o.params.get("check") == "face_shadow":
                n_checked += 1
                lines.append(f"    shared photo check (not lifted): {name} face {o.params['face_index']}, "
                             f"{o.params['ev']:.2f} EV under its peers, its surroundings show {o.params.get('surround_ev')}")
    lines.append(f"  photos outside the pool, as published: {n_lifted} lifts and {n_checked} checks over {n_faces} "
                 f"faces of {len(shared)} photos")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "POSTPROD_ACCURACY_CACHE", Path.home() / ".cache" / "postprod" / "accuracy")),
        help="the accuracy benchmark's cache (its corpus is read, never written)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "postprod" / "faces_lit_check")
    parser.add_argument("--dump", type=Path, default=None, help="pickle the records here (to re-plan offline)")
    parser.add_argument("--from-dump", type=Path, default=None,
                        help="no analysis: plan a --dump's records again with the rules as they are now")
    args = parser.parse_args(argv)
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(args.data / "models"))
    if args.from_dump:
        from benchmarks.faces_shadow_fit import replan

        with args.from_dump.open("rb") as fh:
            dumped = pickle.load(fh)  # noqa: S301 (a file this script wrote)
        print("\n".join(figures(replan(dumped["records"]), dumped["items"], dumped["shared"])))
        return 0
    from pipeline.kernel.run import RunSettings, process_shoot

    items, shared = make_shoot(args.cache, args.data, args.work / "shoot", args.work / "extra_tuning")
    if (args.work / "out").exists():
        shutil.rmtree(args.work / "out")
    result = process_shoot(RunSettings(shoot_dir=args.work / "shoot", out_dir=args.work / "out", executor="local",
                                       graph_path=analysis_graph(args.work / "graph.yaml"), chart="base", force=True))
    records = {r.source_path: r for r in result.records}
    if args.dump:
        with args.dump.open("wb") as fh:
            pickle.dump({"items": items, "shared": shared, "records": records}, fh)
    print("\n".join(figures(records, items, shared)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
