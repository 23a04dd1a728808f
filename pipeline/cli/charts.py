"""``postprod charts``: list, show and validate post-production charts.

Errors are printed as one ``file:line: key: message`` line per bad chart (the
format editors and CI logs link to) and exit with code 2, the CLI's code for
a configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from charts.loader import list_charts, load_chart
from charts.schema import JSON_SCHEMA_PATH, chart_json_schema_text, write_json_schema
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.yamlconf import load_yaml

EXIT_CONFIG = 2


def format_config_error(exc: ConfigError) -> str:
    """One line, ``file:line: key: message``; parts that are unknown are left out."""
    loc = exc.location or Location(None)
    head = str(loc.file) if loc.file else "<chart>"
    if loc.line is not None:
        head += f":{loc.line}"
    parts = [head]
    if loc.key:
        parts.append(loc.key)
    parts.append(" ".join(exc.message.split()))
    return ": ".join(parts)


class ChartConfigError(click.ClickException):
    """One or more invalid charts: one ``file:line: key: message`` line each, exit code 2."""

    exit_code = EXIT_CONFIG

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(format_config_error(e) for e in errors))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file or sys.stderr)


_search_dir_option = click.option(
    "--search-dir",
    "search_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to look chart names up in (repeatable; default: POSTPROD_CHART_PATH, then the bundled charts).",
)


def _dirs(search_dirs: tuple[Path, ...]) -> list[Path] | None:
    return list(search_dirs) if search_dirs else None


@click.group("charts")
def charts() -> None:
    """Post-production charts: a client's or a specialty's written standard."""


@charts.command("list")
@_search_dir_option
def list_command(search_dirs: tuple[Path, ...]) -> None:
    """List the charts available by name, with what each one extends."""
    entries = list_charts(_dirs(search_dirs))
    if not entries:
        click.echo("no charts found")
        return
    width = max(len(e.name) for e in entries)
    for entry in entries:
        try:
            data = load_yaml(entry.path).data
        except ConfigError as exc:
            click.echo(f"{entry.name:<{width}}  (unreadable: {format_config_error(exc)})")
            continue
        data = data if isinstance(data, dict) else {}
        parent = data.get("extends")
        parent_text = f" [extends {parent}]" if parent else ""
        click.echo(f"{entry.name:<{width}}  {data.get('description', '')}{parent_text}")


@charts.command("show")
@click.argument("name")
@_search_dir_option
def show_command(name: str, search_dirs: tuple[Path, ...]) -> None:
    """Print chart NAME (a name or a path) fully resolved, as YAML that `validate` accepts."""
    try:
        resolved = load_chart(name, _dirs(search_dirs))
    except ConfigError as exc:
        raise ChartConfigError([exc]) from None
    click.echo(resolved.to_yaml(), nl=False)


@charts.command("validate")
@click.argument("paths", nargs=-1, required=True)
@_search_dir_option
def validate_command(paths: tuple[str, ...], search_dirs: tuple[Path, ...]) -> None:
    """Check chart files (and the charts they extend); exit code 2 if any is invalid."""
    errors: list[ConfigError] = []
    for path in paths:
        try:
            resolved = load_chart(Path(path), _dirs(search_dirs))
        except ConfigError as exc:
            errors.append(exc)
            continue
        chain = " -> ".join(p.name for p in resolved.chain)
        click.echo(f"ok: {path} ({chain})")
    if errors:
        raise ChartConfigError(errors)


@charts.command("schema")
@click.option("--write", is_flag=True, help=f"Regenerate the committed {JSON_SCHEMA_PATH.name} instead of printing.")
def schema_command(write: bool) -> None:
    """Print the JSON Schema of a chart file (for editor completion), or regenerate the committed copy."""
    if write:
        click.echo(f"wrote {write_json_schema()}")
    else:
        click.echo(chart_json_schema_text(), nl=False)
