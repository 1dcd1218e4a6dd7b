"""User-facing errors: one line that names the file, line or field."""


class OdqaError(Exception):
    """An error the CLI prints as a single line (no traceback)."""
