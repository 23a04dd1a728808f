"""``postprod models``: list, fetch and verify the model files.

Attached to the main CLI as ``postprod models``; importable on its own as
``from pipeline.cli.models import models``.
"""

from __future__ import annotations

import click

from models.registry import (
    MODEL_DIR_ENV,
    REGISTRY,
    ModelError,
    fetch_model,
    get_entry,
    model_dir,
    model_status,
)


@click.group()
def models() -> None:
    """List, fetch and verify the model files (face detectors).

    Files live in $POSTPROD_MODEL_DIR (default ~/.cache/postprod/models) and
    are checked against the SHA-256 pinned in the registry before any use.
    """


@models.command("list")
def list_models() -> None:
    """Show every known model: licence, whether it is cached and verified."""
    click.echo(f"model cache: {model_dir()}  (set {MODEL_DIR_ENV} to change)")
    rows = [("NAME", "BACKEND", "CACHED", "VERIFIED", "LICENCE")]
    for name, entry in sorted(REGISTRY.items()):
        cached, verified = model_status(name)
        rows.append(
            (
                name,
                entry.backend,
                "yes" if cached else "no",
                "-" if verified is None else ("yes" if verified else "HASH MISMATCH"),
                entry.licence,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every model in the registry.")
def fetch(names: tuple[str, ...], fetch_all: bool) -> None:
    """Download NAMES (or --all) from their official addresses and verify them.

    A cached file that already matches its SHA-256 is kept; one that does not
    is replaced.
    """
    if fetch_all:
        names = tuple(sorted(REGISTRY))
    if not names:
        raise click.UsageError(f"name a model to fetch, or pass --all (known: {', '.join(sorted(REGISTRY))})")
    for name in names:
        try:
            entry = get_entry(name)
            with click.progressbar(length=entry.size or 0, label=f"{name} ({entry.filename})") as bar:
                seen = [0]

                def progress(done: int, total: int | None) -> None:
                    if total and bar.length != total:
                        bar.length = total
                    bar.update(done - seen[0])
                    seen[0] = done

                path = fetch_model(name, progress=progress)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{name}: {path} (SHA-256 verified)")


@models.command("verify")
def verify() -> None:
    """Check the SHA-256 of every cached model; exit 1 on any mismatch."""
    bad = []
    for name, entry in sorted(REGISTRY.items()):
        cached, verified = model_status(name)
        state = "not cached" if not cached else ("ok" if verified else "HASH MISMATCH")
        click.echo(f"{name:16} {state}")
        if cached and not verified:
            bad.append(name)
    if bad:
        raise click.ClickException(
            f"{', '.join(bad)}: file does not match the registry's SHA-256 and will not be loaded; "
            f"replace it with `postprod models fetch {' '.join(bad)}`"
        )
