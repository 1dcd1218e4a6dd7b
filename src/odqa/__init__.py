"""odqa: Korean open-domain question answering toolkit."""

__version__ = "0.1.0"
