"""report.html: counts, reasons, overlays, and nothing fetched from outside the folder."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.kernel.run import REPORT_NAME, RunSettings, process_shoot


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Collect, dict]:
    shoot = tmp_path_factory.mktemp("shoot")
    for p in faces_dir.glob("*.jpg"):
        shutil.copy(p, shoot)
    (shoot / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    parser = _Collect()
    parser.feed((out / REPORT_NAME).read_text(encoding="utf-8"))
    return out, parser, json.loads((out / "summary.json").read_text())


def test_report_is_readable_offline(report: tuple[Path, _Collect, dict]) -> None:
    out, parser, _ = report
    assert parser.refs, "the report links its previews and instructions"
    for ref in parser.refs:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (out / ref).is_file(), ref
    assert not any(tag == "script" for tag, _ in parser.tags)


def test_report_counts_and_overlays(report: tuple[Path, _Collect, dict]) -> None:
    out, parser, summary = report
    text = " ".join(parser.text)
    page = (out / REPORT_NAME).read_text(encoding="utf-8")
    assert f"<b>{summary['faces_to_brighten']}</b>faces to brighten" in page
    assert f"<b>{summary['verdicts'].get('reject', 0)}</b>rejected" in page
    assert f"<b>{len(summary['failed'])}</b>failed" in page
    assert "corrupt.jpg" in text  # failed files are listed with their reason
    docs = [json.loads(p.read_text()) for p in (out / "instructions").glob("*.json")]
    n_faces = sum(len(d["faces"]) for d in docs)
    n_crops = sum(1 for d in docs for o in d["operations"] if o["kind"] == "crop")
    rects = [a for tag, a in parser.tags if tag == "rect"]
    dashed = [a for a in rects if "stroke-dasharray" in a]
    assert len(rects) - len(dashed) == n_faces > 0
    assert len(dashed) == n_crops > 0
    red = [a for a in rects if a.get("stroke") == "#e53935"]
    assert len(red) == sum(1 for d in docs for o in d["operations"] if o["kind"] == "brighten_face")
