"""Readers: one per raw format, each turning decoded text into articles (or a quarantine reason)."""
