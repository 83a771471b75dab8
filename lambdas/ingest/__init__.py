"""Ingest: SQS (S3 object created under incoming/) -> validate -> train/ or quarantine/ -> start training."""
