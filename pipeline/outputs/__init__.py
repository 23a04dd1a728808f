"""What a run writes for people and other tools: instructions (JSON, Parquet,
XMP), the report, contact sheets, encoded deliverables."""
