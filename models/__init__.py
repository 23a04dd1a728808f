"""Model registry (verified weight files) and the face detector backends."""

from models.registry import (
    REGISTRY,
    ModelEntry,
    ModelError,
    ModelTask,
    ensure_model,
    fetch_model,
    model_dir,
    verify_file,
)

__all__ = [
    "REGISTRY",
    "ModelEntry",
    "ModelError",
    "ModelTask",
    "ensure_model",
    "fetch_model",
    "model_dir",
    "verify_file",
]
