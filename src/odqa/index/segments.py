"""The files of an updated local index: segments of passages with raw term counts, and deletions.

A build writes one segment, the index itself: `passages.jsonl`, `bm25/` (bm25s's precomputed scores) and,
beside them, the raw counts those scores came from (`bm25/tf.npy`, aligned with bm25s's CSC arrays, and
`bm25/doc_len.npy`). Updates (`odqa.index.updates`) add:

    segments/N/          passages added by one update: passages.jsonl, vocab.json, tf.npy, indices.npy,
                         indptr.npy, doc_len.npy (`bm25_terms.TermCounts` in its own vocabulary)
    live/deleted.npy     one bool per passage across the segments (the build's first): deleted
    live/df-N.npy        each term's document frequency in segment N among its passages not deleted
                         (segment 0 is the build)
    keys/ids-N.json,     segment N's passage ids and the digests of their texts, in order (what an update
    keys/digests-N.npy   looks ids and duplicate texts up in, instead of reading every passage; a build
                         writes segment 0's)

and the manifest's `live` record: {"segments": [[id, passages], ...], "passages": remaining, "deleted": n}.
Files are never rewritten in place: an update writes a new folder (unchanged files hard-linked) and swaps it
in. `compact` (odqa.index.updates) turns it all back into one build-shaped segment.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import Iterator

import numpy as np

from odqa.index import store
from odqa.retrieval.bm25_terms import TermCounts, term_counts
from odqa.retrieval.segment_scores import Segment

TF, DOC_LEN = "tf.npy", "doc_len.npy"
BASE_COUNTS = ("bm25/" + TF, "bm25/" + DOC_LEN)
DELETED = "live/deleted.npy"


def df_file(seg_id: int) -> str:
    return f"live/df-{seg_id}.npy"


def seg_dir(seg_id: int) -> str:
    return f"segments/{seg_id}"


def live_record(manifest: dict) -> dict | None:
    """The manifest's record of segments and deletions (None: an index as built or compacted)."""
    return manifest.get("live") or None


def has_counts(folder: Path) -> bool:
    return all((folder / f).exists() for f in BASE_COUNTS)


# --- writing ---------------------------------------------------------------------------------------

def write_base_counts(bm25_dir: Path, flat, ends, n_terms: int) -> None:
    """The raw counts of a build's documents beside bm25s's score arrays (same pair order)."""
    counts = term_counts(flat, ends, n_terms)
    np.save(bm25_dir / TF, counts.tf)
    np.save(bm25_dir / DOC_LEN, counts.doc_len)


def write_segment(folder: Path, counts: TermCounts, vocab: dict[str, int]) -> None:
    """The term counts of a new segment in `folder` (its passages are written by the caller)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (("tf.npy", counts.tf), ("indices.npy", counts.indices), ("indptr.npy", counts.indptr),
                      (DOC_LEN, counts.doc_len)):
        np.save(folder / name, arr)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")


def write_live(tmp: Path, deleted: np.ndarray, dfs: dict[int, np.ndarray]) -> None:
    (tmp / "live").mkdir(exist_ok=True)
    np.save(tmp / DELETED, np.asarray(deleted, dtype=bool))
    for seg_id, df in dfs.items():
        np.save(tmp / df_file(seg_id), np.asarray(df, dtype=np.int64))


# --- reading ---------------------------------------------------------------------------------------

def _npy(path: Path, mmap: bool):
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def read_counts(folder: Path, seg_id: int, mmap: bool = True) -> tuple[TermCounts, dict[str, int]]:
    """Segment `seg_id`'s counts and vocabulary (0: the build's, from bm25/)."""
    if seg_id == 0:
        b = folder / "bm25"
        vocab = json.loads((b / "vocab.index.json").read_text(encoding="utf-8"))
        return TermCounts(_npy(b / TF, mmap), _npy(b / "indices.csc.index.npy", mmap),
                          _npy(b / "indptr.csc.index.npy", mmap), _npy(b / DOC_LEN, mmap)), vocab
    d = folder / seg_dir(seg_id)
    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    return TermCounts(_npy(d / "tf.npy", mmap), _npy(d / "indices.npy", mmap), _npy(d / "indptr.npy", mmap),
                      _npy(d / DOC_LEN, mmap)), vocab


def keys_files(seg_id: int) -> tuple[str, str]:
    """(ids, text digests) of segment `seg_id`'s passages: what an update looks ids and duplicate texts up in."""
    return f"keys/ids-{seg_id}.json", f"keys/digests-{seg_id}.npy"


def read_keys(folder: Path, seg_id: int) -> tuple[list[str], list[bytes]] | None:
    ids, digests = (folder / f for f in keys_files(seg_id))
    if not (ids.exists() and digests.exists()):
        return None
    raw = np.load(digests, allow_pickle=False)
    return json.loads(ids.read_text(encoding="utf-8")), [bytes(r) for r in raw]


def write_keys(folder: Path, seg_id: int, ids: list[str], digests: list[bytes]) -> None:
    (folder / "keys").mkdir(exist_ok=True)
    f_ids, f_digests = (folder / f for f in keys_files(seg_id))
    f_ids.write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
    np.save(f_digests, np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 16))


def segment_ids(manifest: dict) -> list[int]:
    live = live_record(manifest)
    return [int(s) for s, _ in live["segments"]] if live else [0]


def read_deleted(folder: Path, manifest: dict) -> np.ndarray:
    """One bool per passage across the segments: deleted (all False for an index as built)."""
    if live_record(manifest):
        return np.load(folder / DELETED, allow_pickle=False)
    return np.zeros(manifest["corpus"]["passages"], dtype=bool)


def read_df(folder: Path, manifest: dict, seg_id: int, counts: TermCounts) -> np.ndarray:
    path = folder / df_file(seg_id)
    return np.load(path, allow_pickle=False) if live_record(manifest) and path.exists() else counts.df()


def read_segments(folder: Path, manifest: dict, mmap: bool = True) -> list[Segment]:
    out = []
    for seg_id in segment_ids(manifest):
        counts, vocab = read_counts(folder, seg_id, mmap)
        out.append(Segment(counts, vocab, read_df(folder, manifest, seg_id, counts)))
    return out


def passage_stores(folder: Path, manifest: dict, base: store.PassageStore | None = None) -> list[store.PassageStore]:
    """Each segment's passages, in order (`base`: the build's, already open)."""
    out = []
    for seg_id in segment_ids(manifest):
        if seg_id == 0:
            out.append(base or store.PassageStore(folder / store.PASSAGES))
        else:
            out.append(store.PassageStore(folder / seg_dir(seg_id) / store.PASSAGES))
    return out


class LivePassages(Sequence):
    """The passages not deleted, across segments, in order: what `Index.passages` is for an updated index
    (position i is the i-th remaining passage, the numbering a fresh build of them would give)."""

    def __init__(self, stores: list[store.PassageStore], deleted: np.ndarray):
        self.stores = stores
        self.offsets = list(np.cumsum([0] + [len(s) for s in stores]).tolist())
        self.deleted = np.asarray(deleted, dtype=bool)
        if len(self.deleted) != self.offsets[-1]:
            raise ValueError(f"deletion record of {len(self.deleted)} passages, {self.offsets[-1]} in the segments")
        self.kept = np.flatnonzero(~self.deleted)

    def __len__(self) -> int:
        return len(self.kept)

    def position(self, i: int) -> int:
        """The position across all segments (deleted ones counted) of remaining passage i."""
        return int(self.kept[i])

    def at(self, pos: int):
        seg = bisect_right(self.offsets, pos) - 1
        return self.stores[seg][pos - self.offsets[seg]]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.at(int(self.kept[store.checked_position(i, len(self))]))

    def all_positions(self) -> Iterator[tuple[int, object]]:
        """(position across segments, passage) of every passage, deleted ones included."""
        pos = 0
        for s in self.stores:
            for p in s:
                yield pos, p
                pos += 1

    def __iter__(self):
        for pos, p in self.all_positions():
            if not self.deleted[pos]:
                yield p

    def close(self) -> None:
        for s in self.stores:
            s.close()

    def __repr__(self) -> str:
        return f"LivePassages({len(self)} passages in {len(self.stores)} segments)"
