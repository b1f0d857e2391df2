"""The evidence store (bodycam server): ingest that verifies, receipts, retention."""
