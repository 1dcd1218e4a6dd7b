"""Sizes and fast checksums of the files of a folder (index folders, checkpoints, shipped models).

A record is `{"algorithm": "xxh3_128", "files": {"relative/path": {"size": bytes, "hash": hex}}}`.
Checking a file compares its size first (one `stat`, always cheap), then its checksum. xxh3-128 (the
`xxhash` package) hashes at memory speed; without it, hashlib's blake2b.

A file is hashed once, not once per process: a checksum is remembered in memory and, for files of 1 MiB or more,
under `<odqa cache>/digests/` with the file's identity (path, device, inode, size, modification and change
times, in nanoseconds). Any write to the file, a rename or `touch` changes the change time, which no
user command can set back, so a remembered checksum is used only for the very bytes it was computed
from; anything else is hashed again. The memo is an optimisation: when it cannot be read or written
the file is simply hashed.

Checkpoint folders keep their record in `odqa_checksums.json`, written last at save and checked
at load; a folder without one (saved by an older odqa) loads unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from odqa.settings import cache_root

try:
    import xxhash
except ImportError:          # pragma: no cover - xxhash is a dependency; blake2b keeps odqa working without it
    xxhash = None

ALGORITHM = "xxh3_128" if xxhash is not None else "blake2b"
CHECKSUMS = "odqa_checksums.json"
_BLOCK = 1 << 22


def _hasher(algorithm: str):
    if algorithm == "xxh3_128" and xxhash is not None:
        return xxhash.xxh3_128()
    if algorithm == "blake2b":
        return hashlib.blake2b(digest_size=16)
    raise ValueError(f"checksum algorithm {algorithm!r} is not available here (pip install xxhash)")


DIGESTS = "digests"
REMEMBER_MIN_BYTES = 1 << 20    # smaller files hash in well under a millisecond: not worth a memo file each


def _hash_file(path: str, algorithm: str) -> str:
    h = _hasher(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=4096)
def _digest(path: str, identity: tuple, algorithm: str) -> str:
    if identity[2] < REMEMBER_MIN_BYTES:
        return _hash_file(path, algorithm)
    try:
        seen = json.loads(_memo_file(path, algorithm).read_text(encoding="utf-8"))
        want = _memo_entry(path, identity, algorithm)
        if {k: seen.get(k) for k in want} == want and isinstance(seen.get("hash"), str):
            return seen["hash"]
    except (OSError, ValueError, AttributeError):
        pass
    return _hash_and_remember(path, identity, algorithm)


def _memo_entry(path: str, identity: tuple, algorithm: str) -> dict:
    return {"path": path, "identity": list(identity), "algorithm": algorithm}


def _hash_and_remember(path: str, identity: tuple, algorithm: str) -> str:
    """The file's checksum, read now and remembered (files of REMEMBER_MIN_BYTES or more)."""
    digest = _hash_file(path, algorithm)
    if identity[2] >= REMEMBER_MIN_BYTES:
        _remember(_memo_file(path, algorithm), {**_memo_entry(path, identity, algorithm), "hash": digest})
    return digest


def _memo_file(path: str, algorithm: str) -> Path:
    name = hashlib.sha1(f"{algorithm}\0{path}".encode("utf-8", "surrogateescape")).hexdigest()
    return cache_root() / DIGESTS / name[:2] / f"{name[2:]}.json"


def _remember(memo: Path, entry: dict) -> None:
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def file_digest(path: Path, algorithm: str = ALGORITHM, reread: bool = False) -> str:
    """Checksum of a file: remembered for the file's exact identity (see the module doc), else computed.
    `reread`: read the bytes whatever is remembered (a check for decay on disk, `odqa index --verify`)."""
    path = Path(path).absolute()
    st = path.stat()
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if reread:
        return _hash_and_remember(str(path), identity, algorithm)
    return _digest(str(path), identity, algorithm)


def record(folder: Path, skip: tuple[str, ...] = ()) -> dict:
    """Size and checksum of every file under `folder` (relative paths; hidden files and `skip` left out)."""
    files = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        if rel in skip or any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue
        files[rel] = {"size": f.stat().st_size, "hash": file_digest(f)}
    return {"algorithm": ALGORITHM, "files": files}


def problem(folder: Path, rel: str, rec: dict, full: bool = True, reread: bool = False) -> str | None:
    """What is wrong with file `rel` of `folder` against record `rec` (None when it matches).
    `full=False` checks presence and size only; `reread` hashes the bytes even where a checksum is remembered."""
    path = folder / rel
    want = rec["files"][rel]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path}: file missing"
    except OSError as e:
        return f"{path}: unreadable ({e.strerror})"
    if size != want["size"]:
        return f"{path}: truncated or grown ({size} bytes, {want['size']} recorded)"
    if not full:
        return None
    try:
        got = file_digest(path, rec.get("algorithm", ALGORITHM), reread)
    except OSError as e:
        return f"{path}: unreadable ({e.strerror})"
    if got != want["hash"]:
        return f"{path}: altered (its {rec.get('algorithm')} checksum differs from the one recorded)"
    return None


def problems(folder: Path, rec: dict, prefix: str = "", full: bool = True, reread: bool = False) -> list[str]:
    """Problems of the recorded files whose relative path starts with `prefix` ("" = all)."""
    return [p for rel in rec["files"] if rel.startswith(prefix)
            for p in [problem(folder, rel, rec, full, reread)] if p]


def write_checksums(folder: Path) -> None:
    """Record every file of checkpoint folder `folder` in `odqa_checksums.json` (call it last)."""
    folder = Path(folder)
    (folder / CHECKSUMS).write_text(json.dumps(record(folder, skip=(CHECKSUMS,)), indent=1) + "\n",
                                    encoding="utf-8")


def check_folder(folder: Path, error: type[Exception], hint: str) -> None:
    """Raise `error` naming the first bad file of checkpoint folder `folder`, then what to do (`hint`)."""
    found = folder_problems(folder)
    if found:
        more = f" (and {len(found) - 1} more file(s))" if len(found) > 1 else ""
        raise error(f"{found[0]}{more}; {hint}")


def folder_problems(folder: Path) -> list[str]:
    """Problems of checkpoint folder `folder` against its `odqa_checksums.json` ([] without one)."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.exists():
        return []
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        rec["files"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return [f"{path}: unreadable checksum record ({e.__class__.__name__})"]
    return problems(folder, rec)
