"""What every ``postprod`` command shares: verbosity flags anywhere on the line, Ctrl-C, exit codes.

Tools photographers script around (exiftool, ImageMagick, rawtherapee-cli)
take ``-v`` and ``-q`` wherever they are written; click only reads a group's
options before the subcommand, so :class:`PostprodGroup` gives every command
its own ``-v``/``-q``, writing to the same place. Ctrl-C exits with 130 (128
+ SIGINT, what shells and CI runners expect) and a one-line message instead of
click's "Aborted!" and exit code 1, which the README reserves for internal
errors.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_FILES_FAILED = 3
EXIT_INTERRUPTED = 130

QUIET_KEY = "postprod.quiet"


class ConfigProblem(click.ClickException):
    """A configuration error (a chart, a graph, a setting, a model that cannot be had), shown without a
    traceback, exit code 2."""

    exit_code = EXIT_CONFIG

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))


def set_verbosity(ctx: click.Context, verbose: int = 0, quiet: bool = False) -> None:
    """Log level from the flags given so far on the command line (the loudest ``-v`` wins over ``-q``)."""
    meta = ctx.meta
    meta["postprod.verbose"] = max(meta.get("postprod.verbose", 0), verbose)
    meta[QUIET_KEY] = meta.get(QUIET_KEY, False) or quiet
    level = logging.WARNING - 10 * min(meta["postprod.verbose"], 2)
    if meta[QUIET_KEY] and not meta["postprod.verbose"]:
        level = logging.ERROR
    logging.getLogger().setLevel(level)
    # Pillow logs its trouble with a damaged file as errors of its own; the file's failed row says what stopped it.
    logging.getLogger("PIL").setLevel(logging.DEBUG if meta["postprod.verbose"] >= 2 else logging.CRITICAL)
    if meta["postprod.verbose"] >= 2:  # and libtiff's, printed from C, in this process and the workers it starts
        from pipeline.imaging.libtiff import MESSAGES_ENV, libtiff_messages, opencv_warnings

        os.environ[MESSAGES_ENV] = "1"
        libtiff_messages(True)
        opencv_warnings(True)


def is_quiet(ctx: click.Context | None = None) -> bool:
    """Whether ``-q``/``--quiet`` was given anywhere on the command line."""
    ctx = ctx or click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(QUIET_KEY))


def _verbose_callback(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        set_verbosity(ctx, verbose=value)


def _quiet_callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        set_verbosity(ctx, quiet=True)


def verbosity_params() -> list[click.Option]:
    """Fresh ``-v``/``--verbose`` and ``-q``/``--quiet`` options (not passed to the command function)."""
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbose_callback,
                     help="More log output (-v info, -vv debug); accepted before or after the command name."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet_callback,
                     help="Print nothing but errors; the exit code tells the outcome."),
    ]


def add_verbosity(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, every command in it) the ``-v``/``-q`` options."""
    names = {opt for p in command.params for opt in getattr(p, "opts", [])}
    if "-v" not in names:
        command.params.extend(verbosity_params())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
    return command


class PostprodGroup(click.Group):
    """A click group whose commands all take ``-v``/``-q`` and whose Ctrl-C exits with 130."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(add_verbosity(cmd), name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # The journal keeps every finished image: say so, and exit as an interrupted program does.
            click.echo("\ninterrupted (Ctrl-C); run the same command again to resume where it stopped", err=True)
            ctx.exit(EXIT_INTERRUPTED)
