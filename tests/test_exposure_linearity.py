"""Exposure is measured in linear light: a real RAW re-exposed by 2**k reads k EV apart.

The sensor data of a real camera RAW is scaled by 2**k and written as a valid
DNG (pipeline.imaging.dng), then decoded and measured by the pipeline itself, exactly
as a shoot would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.imaging.dng import rescale_raw_to_dng
from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext

SOURCE = "Canon_PowerShot_S40_CRW_0113.CRW"  # no clipped highlights, so a +1 EV push stays linear


@pytest.fixture(scope="module")
def measured(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    shoot = tmp_path_factory.mktemp("linearity")
    for k in (-2, -1, 0, 1):
        rescale_raw_to_dng(raw_dir / SOURCE, shoot / f"k{k:+d}.dng", 2.0**k)
    analysis = load_graph().subset({"decode_raw", "measure_exposure"})
    runner = Runner(analysis, RunContext(shoot_dir=shoot, out_dir=shoot))
    out = {}
    for task in scan_shoot(shoot).tasks:
        record = runner.run(task)
        assert record.status == "ok", record.error
        out[int(task.path.stem[1:])] = record.exposure.meter_ev
    return out


@pytest.mark.parametrize("k", [-2, -1, 1])
def test_scaling_sensor_data_moves_exposure_by_k(measured: dict[int, float], k: int) -> None:
    assert measured[k] - measured[0] == pytest.approx(k, abs=0.15)
