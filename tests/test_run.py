"""End to end: both executors on the real RAW files give the same manifest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.kernel.errors import ConfigError
from pipeline.kernel.run import MANIFEST_NAME, RunSettings, process_shoot
from pipeline.kernel.schema import MANIFEST_SCHEMA, SCHEMA_VERSION, schema_version_of

TIMING_COLUMNS = ["stage_seconds"]


@pytest.fixture(scope="module")
def shoot(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real RAWs, the unsupported files, and a duplicate, as one shoot."""
    root = tmp_path_factory.mktemp("shoot")
    shutil.copytree(raw_dir, root / "raw", symlinks=False)
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", root / "copy_of_DC0008L.KDC")
    (root / "raw" / "Kodak_DC50_DC50IMG_DC0008L.xmp").write_text("<x:xmpmeta/>")
    return root


def _run(shoot: Path, out: Path, executor: str) -> tuple[object, object]:
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor=executor, workers=2))
    return result, pq.read_table(out / MANIFEST_NAME)


@pytest.mark.slow
def test_local_and_ray_give_the_same_manifest(shoot: Path, raw_dir: Path, tmp_path: Path) -> None:
    local, local_table = _run(shoot, tmp_path / "local", "local")
    ray_result, ray_table = _run(shoot, tmp_path / "ray", "ray")
    assert local_table.schema.equals(MANIFEST_SCHEMA, check_metadata=False)
    assert schema_version_of(tmp_path / "local" / MANIFEST_NAME) == SCHEMA_VERSION
    assert local_table.drop(TIMING_COLUMNS).equals(ray_table.drop(TIMING_COLUMNS))

    rows = {r["source_path"]: r for r in local_table.to_pylist()}
    n_files = sum(1 for p in shoot.rglob("*") if p.is_file() and p.suffix != ".xmp")
    assert len(rows) == n_files  # one row per input file, nothing dropped
    real = [p.name for p in raw_dir.iterdir() if p.is_file() and p.suffix != ".txt"]
    for name in real:
        row = rows[f"raw/{name}"]
        assert row["status"] == "ok", (name, row["error"])
        assert row["camera_make"] and row["camera_model"] and row["width"] > 0 and row["height"] > 0
        if row["duplicate_of"] is None:
            assert set(dict(row["stage_seconds"])) >= {"decode_raw"}
    unsupported = [k for k in rows if k.startswith("raw/unsupported/")]
    assert len(unsupported) >= 15
    for key in unsupported:
        assert rows[key]["status"] == "failed" and rows[key]["error"], key
    assert rows["raw/LICENSE_CC0_digicam_corpus.txt"]["status"] == "failed"
    dup = rows["raw/Kodak_DC50_DC50IMG_DC0008L.KDC"]
    copy = rows["copy_of_DC0008L.KDC"]
    # The copy sorts first, so it is the one processed; the original points at it.
    assert copy["duplicate_of"] is None and dup["duplicate_of"] == "copy_of_DC0008L.KDC"
    assert (dup["width"], dup["camera_model"]) == (copy["width"], copy["camera_model"])
    summary = local.summary()
    assert summary["skipped_by_reason"] == {"sidecar (.xmp)": 1}
    assert len(summary["duplicates"]) == 1
    assert len(summary["failed"]) == len(unsupported) + 1
    assert ray_result.summary()["ok"] == summary["ok"] == len(real)


def test_output_inside_shoot_is_refused(shoot: Path) -> None:
    with pytest.raises(ConfigError, match="outside the shoot"):
        process_shoot(RunSettings(shoot_dir=shoot, out_dir=shoot / "out", executor="local"))


def test_the_driver_gives_arrow_glibc_s_pool_unless_the_user_chose_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's bundled pool kept the driver's freed table batches resident (RESULTS.md, target 5)."""
    import pyarrow as pa

    from pipeline.kernel.schema import use_system_memory_pool

    before = pa.default_memory_pool()
    try:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        assert not use_system_memory_pool()
        assert pa.default_memory_pool().backend_name == "mimalloc"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        assert use_system_memory_pool()
        assert pa.default_memory_pool().backend_name == "system"
        assert not use_system_memory_pool()  # once is enough
    finally:
        pa.set_memory_pool(before)


def test_arrow_s_cxx_pool_is_glibc_s_once_postprod_is_imported(tmp_path: Path) -> None:
    """The Parquet writer's pages come from Arrow's C++ default pool, which pyarrow.set_memory_pool does
    not change: postprod chooses it before pyarrow loads, unless the user did (RESULTS.md, target 5)."""
    script = (
        "import pipeline, pyarrow as pa, pyarrow.parquet as pq\n"
        "schema = pa.schema([('a', pa.string())])\n"
        f"with pq.ParquetWriter({str(tmp_path / 't.parquet')!r}, schema, compression='zstd') as w:\n"
        "    w.write_table(pa.Table.from_pylist([{'a': str(i) * 50} for i in range(1000)], schema=schema))\n"
        "print(pa.default_memory_pool().backend_name, pa.mimalloc_memory_pool().max_memory())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    ours = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert ours.stdout.split() == ["system", "0"]
    theirs = subprocess.run([sys.executable, "-c", script], env={**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"},
                            capture_output=True, text=True, check=True)
    name, used = theirs.stdout.split()
    assert name == "mimalloc" and int(used) > 0
