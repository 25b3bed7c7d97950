"""feedsvc: Markdown newsletter issues in; per-section feeds, a web archive and per-subscriber email out."""

__version__ = "0.1.0"
