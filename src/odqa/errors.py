"""User-facing errors: one line that names the file, line or field.

Callers catch them by type; the CLI prints `odqa: error: <message>` and exits with the class's
`exit_code` (documented in docs/errors.md):

    OdqaError            2  anything else the user can fix (bad argument, bad value)
    ├── ConfigError      2  a config file or `--set` field is malformed or out of range
    ├── CorpusError      3  a corpus, questions or dataset file cannot be read
    ├── IndexNotFound    4  no index of that name (or no manifest in its folder)
    ├── IndexStale       5  the index is of another format or its inputs changed
    ├── IndexCorrupt     5  a file of the index is missing, truncated or altered
    ├── IndexBusy        7  another process is building the index (its writer lock is taken)
    ├── ModelError       6  a model folder, checkpoint or shipped model is missing or invalid
    ├── StorageError     8  the disk is full or the folder is read-only; the previous files were kept
    ├── MissingExtra     2  an optional extra is not installed (also an ImportError)
    └── Interrupted    130  Ctrl-C during a write; the message says what was kept
"""


class OdqaError(Exception):
    """An error the CLI prints as a single line (no traceback)."""
    exit_code = 2


class ConfigError(OdqaError):
    """A config file, a `--set` override or a config field value is invalid."""


class CorpusError(OdqaError):
    """A corpus, questions or dataset file is missing or malformed."""
    exit_code = 3


class IndexError_(OdqaError):
    """Base of the index errors (named with a trailing underscore: `IndexError` is a builtin)."""
    exit_code = 5


class IndexNotFound(IndexError_):
    """No index of that name in the index folder (or its folder has no manifest)."""
    exit_code = 4


class IndexStale(IndexError_):
    """The index was built by another format version or from inputs that changed."""


class IndexCorrupt(IndexError_):
    """A file of the index is missing, truncated or altered."""


class IndexBusy(IndexError_):
    """Another process holds the writer lock of the index."""
    exit_code = 7


class StorageError(OdqaError):
    """A write failed for want of space or permission (disk full, read-only folder); nothing was changed."""
    exit_code = 8


class Interrupted(OdqaError):
    """Ctrl-C (KeyboardInterrupt) during a write, with what was kept (`index 'wiki' left unchanged`)."""
    exit_code = 130


class ModelError(OdqaError):
    """A model folder, checkpoint or backbone spec is missing or invalid."""
    exit_code = 6


class MissingExtra(OdqaError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""
