"""Shared fixtures.

Real files live in ``../shared/data`` (override with ``POSTPROD_TESTDATA``).
A test that needs them fails in CI (``CI=true``) when they are missing and is
skipped elsewhere, so a contributor without the data still runs the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The review tests' shoots and their ``out`` and ``client`` fixtures (tests/review_shoot.py).
pytest_plugins = ("review_shoot",)

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")).resolve()

# Models come from the shared data, verified by hash, and are never downloaded in tests.
os.environ["POSTPROD_MODEL_DIR"] = str(TESTDATA / "models")
os.environ["POSTPROD_OFFLINE"] = "1"
# Every stage sees a record that refuses reads and writes it did not declare (pipeline.kernel.declared).
os.environ["POSTPROD_CHECK_DECLARATIONS"] = "1"


def require(path: Path) -> Path:
    if not path.exists():
        message = f"test data missing: {path} (set POSTPROD_TESTDATA to the shared data folder)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def testdata() -> Path:
    return require(TESTDATA)


@pytest.fixture(scope="session")
def raw_dir(testdata: Path) -> Path:
    return require(testdata / "raw")


@pytest.fixture(scope="session")
def unsupported_dir(testdata: Path) -> Path:
    return require(testdata / "raw" / "unsupported")


@pytest.fixture(scope="session")
def faces_dir(testdata: Path) -> Path:
    return require(testdata / "faces" / "pascal_voc")


@pytest.fixture(scope="session")
def exposure_dir(testdata: Path) -> Path:
    return require(testdata / "exposure")


@pytest.fixture(scope="session")
def model_dir(testdata: Path) -> Path:
    return require(testdata / "models")
