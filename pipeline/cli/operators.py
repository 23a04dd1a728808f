"""``postprod operators``: photographers' and camera bodies' histories over many output folders."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import click

from pipeline.cli.common import ConfigProblem, is_quiet
from pipeline.kernel.errors import ConfigError, Location


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _pct(v: float) -> str:
    return f"{v:.0%}"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _day(v) -> str:  # noqa: ANN001
    return v.strftime("%Y-%m-%d") if v else "-"


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("postprod-history"),
              show_default=True, help="Folder for photographers.parquet, photographer_shoots.parquet, "
              "bodies.parquet and body_defects.parquet.")
@click.option("--limit", type=int, default=40, show_default=True, help="Rows printed per table (all are written).")
def operators(folders: tuple[Path, ...], out_dir: Path, limit: int) -> None:
    """Put the photographer and equipment tables of many output folders together.

    FOLDERS are output folders of `postprod process`, or folders holding them
    (searched three levels down). Prints, per photographer, how their frames
    fared across shoots (shares corrected, sent to a retoucher, rejected;
    exposure and tilt habits; focus misses) and, per camera body, its dust
    spots and photosite defects with when each first appeared and whether
    later shoots show it gone; writes the same as Parquet under --out.
    """
    from pipeline.equipment.history import (
        BODIES_SCHEMA,
        DEFECTS_SCHEMA,
        PHOTOGRAPHERS_SCHEMA,
        body_history,
        find_output_folders,
        load_tables,
        photographer_history,
    )
    from pipeline.kernel.schema import to_table, write_parquet_atomic

    start = time.perf_counter()
    try:
        found = find_output_folders(list(folders))
    except FileNotFoundError as exc:  # folders given that hold no output: a usage error (exit 2)
        raise ConfigProblem(exc) from None
    tables = load_tables(found)
    people = photographer_history(tables.operators)
    bodies, defects = body_history(tables)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigProblem(ConfigError(f"cannot create: {exc}", Location(str(out_dir), key="--out"))) from None
    meta = {"folders": len(found)}
    write_parquet_atomic(to_table(people, PHOTOGRAPHERS_SCHEMA, meta), out_dir / "photographers.parquet")
    shoots = tables.operators.sort_by([("photographer", "ascending"), ("captured_from", "ascending")])
    write_parquet_atomic(shoots, out_dir / "photographer_shoots.parquet")
    write_parquet_atomic(to_table(bodies, BODIES_SCHEMA, meta), out_dir / "bodies.parquet")
    write_parquet_atomic(to_table(defects, DEFECTS_SCHEMA, meta), out_dir / "body_defects.parquet")
    seconds = time.perf_counter() - start
    if is_quiet():
        return

    echo = click.echo
    echo(f"{len(found)} output folders, {tables.operators.num_rows} photographer-shoots, "
         f"{tables.equipment.num_rows} equipment findings\n")
    echo("Photographers (shares of the frames the chart was applied to)")
    echo(_table(
        ["photographer", "shoots", "frames", "rejected", "to retoucher", "exposure", "wb", "face", "straighten",
         "EV median", "horizon", "verticals", "pitched", "focus misses", "bursts", "first", "last"],
        [[p["photographer"], str(p["shoots"]), str(p["captures"]), _pct(p["rejected_share"]),
          _pct(p["to_retoucher_share"]), _pct(p["exposure_share"]), _pct(p["white_balance_share"]),
          _pct(p["brighten_face_share"]), _pct(p["straighten_share"]), _num(p["exposure_ev_median"], "+.2f"),
          _num(p["horizon_tilt_median_deg"], "+.1f"), _num(p["verticals_tilt_median_deg"], "+.1f"),
          _pct(p["pitched_share"]), _pct(p["focus_miss_share"]), str(p["bursts"]), _day(p["first_shoot"]),
          _day(p["last_shoot"])]
         for p in people[:limit]]))  # fmt: skip
    echo("\nCamera bodies")
    echo(_table(
        ["body", "shoots", "frames", "f/8+ frames", "dust now", "dust gone", "dust ?", "photosites",
         "focus misses", "first", "last"],
        [[b["body"], str(b["shoots"]), str(b["frames"]), str(b["small_aperture_frames"]),
          str(b["dust_spots_present"]), str(b["dust_spots_gone"]), str(b["dust_spots_undecided"]),
          str(b["photosite_defects"]), str(b["focus_misses"]), _day(b["first_shoot"]), _day(b["last_shoot"])]
         for b in bodies[:limit]]))  # fmt: skip
    if defects:
        echo("\nSensor defects by body (first seen, last seen, status)")
        echo(_table(
            ["body", "kind", "where", "first seen", "last seen", "shoots", "status"],
            [[d["body"], d["kind"], f"{d['x']:.0%}, {d['y']:.0%}", f"{_day(d['first_seen'])} {d['first_shoot']}",
              f"{_day(d['last_seen'])} {d['last_shoot']}", str(d["shoots_seen"]), d["status"]]
             for d in sorted(defects, key=lambda d: (d["body"], d["kind"], d["first_seen"] or datetime.min))[:limit]]))
    echo(f"\nwritten to {out_dir} in {seconds:.2f} s")
