"""postprod: a post-production pipeline for photo shoots."""

__version__ = "0.1.0"
