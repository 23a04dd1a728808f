"""Ctrl-C is never lost: one that something swallowed where it landed still stops the run at the next image."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.kernel.interrupt import handle_interrupts, stop_if_interrupted
from pipeline.kernel.run import RunSettings, process_shoot


def press_ctrl_c_and_swallow_it() -> None:
    """What a fork's at-fork hook or a ``__del__`` does to a KeyboardInterrupt: catch it and go on."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2.0)  # the handler runs at the next bytecode: well within this
    except KeyboardInterrupt:
        return
    raise AssertionError("SIGINT did not raise KeyboardInterrupt")


def test_a_swallowed_interrupt_is_raised_again() -> None:
    with handle_interrupts():
        stop_if_interrupted()  # nothing pressed: nothing raised
        press_ctrl_c_and_swallow_it()
        with pytest.raises(KeyboardInterrupt):
            stop_if_interrupted()


def test_the_handler_is_put_back_and_an_old_press_forgotten() -> None:
    before = signal.getsignal(signal.SIGINT)
    with handle_interrupts():
        press_ctrl_c_and_swallow_it()
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
    with handle_interrupts():
        stop_if_interrupted()  # the press of the block before does not stop this one


def test_a_run_stops_at_the_next_image_and_resumes(tmp_path: Path) -> None:
    shoot, out = tmp_path / "shoot", tmp_path / "out"
    shoot.mkdir()
    rng = np.random.default_rng(0)
    for n in range(4):
        ramp = np.linspace(30, 220, 320)[None, :, None] * np.ones((240, 1, 3))
        pixels = np.clip(ramp + rng.normal(0, 12, (240, 320, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(shoot / f"frame_{n}.jpg", quality=90)
    seen: list[str] = []

    def on_record(record) -> None:  # noqa: ANN001 - an ImageRecord
        seen.append(record.source_path)
        if len(seen) == 1:
            press_ctrl_c_and_swallow_it()

    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local")
    with pytest.raises(KeyboardInterrupt):
        process_shoot(settings, on_record=on_record)
    assert len(seen) == 1, f"the run went on after Ctrl-C: {seen}"
    result = process_shoot(settings)
    names = sorted(r.source_path for r in result.records)
    assert names == [f"frame_{n}.jpg" for n in range(4)]
    assert all(r.status == "ok" for r in result.records)
