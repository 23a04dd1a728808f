"""Chart fuzzer: seeded mutations of the bundled charts never give a traceback.

Every outcome must be a valid chart or a :class:`ConfigError` that names the
file (and, where the problem has one, the line); and a chart that validates
must not be able to crash a run: its naming template renders, with every token
at its longest, to names a file system accepts, and its boxes fit the render's
memory. A failure prints the seed; ``mutate(seed, bundled_charts())`` gives
the same chart again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from chart_fuzz import bundled_charts, write_mutant

from charts.loader import BUNDLED_DIR, load_chart
from charts.naming import MAX_COMPONENT_BYTES, NAMING_TOKENS, TOKEN_MAX_CHARS, render_name
from charts.schema import MAX_BOX_MEGAPIXELS
from pipeline.kernel.errors import ConfigError

MUTANTS = 400
SEED0 = 20261129


def _worst_case_tokens() -> dict[str, object]:
    tokens: dict[str, object] = {t: "W" * TOKEN_MAX_CHARS[t] for t in NAMING_TOKENS}
    tokens["seq"] = 10 ** (TOKEN_MAX_CHARS["seq"] - 1)
    tokens["ext"] = "jpeg"
    return tokens


def test_mutated_charts_give_a_chart_or_a_config_error(tmp_path: Path) -> None:
    charts = bundled_charts()
    outcomes = {"valid": 0, "config_error": 0}
    crashes: list[str] = []
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for seed in range(SEED0, SEED0 + MUTANTS):
        folder = tmp_path / str(seed)
        folder.mkdir()
        path, base, applied = write_mutant(folder, seed, charts)
        t0 = time.process_time()  # CPU seconds: other jobs on the machine do not count
        try:
            resolved = load_chart(path, search_dirs=[folder, BUNDLED_DIR])
        except ConfigError as exc:
            outcomes["config_error"] += 1
            if exc.location is None or not exc.location.file:
                crashes.append(f"seed {seed} ({base}, {applied}): error without a file: {exc}")
        except BaseException as exc:  # noqa: BLE001 - the point is that nothing else escapes
            crashes.append(f"seed {seed} ({base}, {applied}): {type(exc).__name__}: {str(exc)[:200]}")
        else:
            outcomes["valid"] += 1
            chart = resolved.chart
            name = render_name(chart.naming, **_worst_case_tokens())
            assert all(len(c.encode()) <= MAX_COMPONENT_BYTES for c in name.split("/")), (seed, name)
            for r in chart.renditions.values():
                if r.box is not None:
                    assert r.box[0] * r.box[1] <= MAX_BOX_MEGAPIXELS * 1e6, (seed, r.box)
        seconds[f"seed {seed} ({applied})"] = time.process_time() - t0
    # A chart that blows up (an alias or nesting explosion) takes orders of magnitude longer than the
    # others; judged in CPU seconds against the median of the same run, so a busy machine does not fail
    # it (a 20,000-deep nesting, refused, takes about 1 s of wall time and read 2.2 s at a load of 7).
    median = sorted(seconds.values())[len(seconds) // 2]
    slow = [f"{what}: {t:.1f} CPU s (median {median:.3f} s)" for what, t in seconds.items()
            if t > max(5.0, 50 * median)]
    elapsed = time.perf_counter() - start
    print(f"{MUTANTS} mutated charts in {elapsed:.1f} s: {outcomes}, {len(crashes)} tracebacks")
    assert not crashes, "\n".join(crashes)
    assert not slow, "\n".join(slow)
    # The mutations must exercise both sides: some charts stay valid, most are refused.
    assert outcomes["valid"] >= 10 and outcomes["config_error"] >= MUTANTS // 2, outcomes


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("schema_version: 2\ndescription: a\x07b\n", "U+0007", 2),
        ("schema_version: 2\ndescription: \u202eevil\n", "U+202E", 2),
        ("schema_version: 2\n? [a, b]\n: 1\n", "not a list or a mapping", 2),
        ("schema_version: 2\n{x: 1}: 2\n", "not a list or a mapping", 2),
        ("schema_version: 2\ndescription: " + "[" * 5000 + "]" * 5000 + "\n", "levels deep", 2),
        ("schema_version: 2\nloop: &x [*x]\n", "loop", 2),
        ("schema_version: 2\ncaptured: 2020-13-45\n", "2020-13-45", 2),
        ("schema_version: 2\nx: !!int '1.5'\n", "1.5", 2),
    ],
)
def test_hostile_yaml_is_a_config_error_with_its_line(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_chart(path)
    assert message in str(info.value)
    assert info.value.location.file == path and info.value.location.line == line


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["schema_version: 2", "x:", "  a0: &a0 [lol]"]
    for i in range(1, 12):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("description: *a11")  # 9**11 values once expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="alias"):
        load_chart(path)
    assert time.perf_counter() - start < 10.0  # expanded, the 9**11 values would never finish


def test_oversized_and_non_utf8_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("schema_version: 2\n#" + "x" * (2 << 20) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="larger than"):
        load_chart(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"schema_version: 2\ndescription: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_chart(latin)
    assert info.value.location.line == 2


def test_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "schema_version: 2\nextends: base\n"
        "renditions:\n  web: &web {long_edge_px: 2048, format: jpeg, quality: 85}\n"
        "  web_small:\n    <<: *web\n    long_edge_px: 800\n",
        encoding="utf-8",
    )
    chart = load_chart(path).chart
    assert chart.renditions["web_small"].long_edge_px == 800 and chart.renditions["web_small"].quality == 85


@pytest.mark.parametrize(
    ("rendition", "key", "message"),
    [
        ("{crop: '1:1', width_px: 30000, height_px: 30000}", "width_px", "at most 100 MP"),
        ("{long_edge_px: 20000, format: webp}", "long_edge_px", "webp holds at most 16383"),
    ],
)
def test_renditions_the_machine_cannot_make_are_refused(tmp_path: Path, rendition: str, key: str, message: str) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(f"schema_version: 2\ncrops: [{{aspect: '1:1'}}]\nrenditions:\n  big: {rendition}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_chart(path)
    assert info.value.location.key == f"renditions.big.{key}" and info.value.location.line == 4


def test_a_naming_template_that_could_pass_255_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text('schema_version: 2\nnaming: "' + "x" * 200 + '_{stem}.{ext}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="255") as info:
        load_chart(path)
    assert info.value.location.key == "naming" and info.value.location.line == 2
