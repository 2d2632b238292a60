"""newsstance: from scraped news pages to a versioned, annotated NER + stance dataset."""

__version__ = "0.1.0"
