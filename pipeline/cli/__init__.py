"""The command-line app: ``postprod process|inspect|describe|charts|models|review|demo-shoot``."""

from pipeline.cli.main import EXIT_CONFIG, EXIT_FILES_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, main, run

__all__ = ["EXIT_CONFIG", "EXIT_FILES_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "main", "run"]
