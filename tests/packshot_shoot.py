"""A packshot shoot processed as a user runs it: scikit-image's cup on a white sweep (``benchmarks.packshots``)."""

from __future__ import annotations

from pathlib import Path


def processed_packshot(shoot: Path, out: Path, chart: str | Path = "ecommerce", falloff_ev: float = 0.0) -> Path:
    """``postprod process`` of the cup on a sweep falling off ``falloff_ev`` EV to its corners, written to ``shoot``
    as ``cup.jpg``, into ``out`` under ``chart``; returns ``out``."""
    from click.testing import CliRunner
    from PIL import Image

    from benchmarks.packshots import coffee_cup, on_white
    from pipeline.cli import main

    shoot.mkdir(parents=True, exist_ok=True)
    Image.fromarray(on_white(coffee_cup(), falloff_ev=falloff_ev)).save(shoot / "cup.jpg", quality=95)
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--chart", str(chart),
                                       "--executor", "local", "-q"])
    assert result.exit_code == 0, result.output
    return out


def chart_leaving_the_backdrop(folder: Path) -> Path:
    """A chart like ``social_media`` that leaves the backdrop as corrected (``exposure.backdrop_white: false``)."""
    chart = folder / "as_corrected.yaml"
    chart.write_text("schema_version: 2\nextends: social_media\nexposure:\n  backdrop_white: false\n")
    return chart
