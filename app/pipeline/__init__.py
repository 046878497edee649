"""The per-image pipeline: decode, detect, redact, encode."""
