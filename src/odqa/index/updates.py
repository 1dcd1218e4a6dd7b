"""Live updates of a local index: add, delete or replace (upsert) passages, and compact, without a rebuild.

An update analyses only the passages it adds, writes them as a new segment (`odqa.index.segments`), marks
deleted passages in the deletion record, adjusts the document frequencies of the terms of the passages it
deletes, and rewrites the dense vectors without re-encoding the others (`odqa.index.dense_updates`).
Searches of an updated index score at query time from raw counts with the statistics of the remaining
passages, so their top-k equals a full rebuild's over the same passages in the same order (the build's
remaining passages, then each update's, in order). `compact` merges everything back into one segment with
precomputed scores, the shape of a fresh build.

Every update is all or nothing: it writes a new version of the folder beside the old one (unchanged files
hard-linked, new ones written, the manifest last with every file's checksum) and swaps it in with one
rename (`odqa.atomic.AtomicFolder`), under the index's writer lock; a failure (a full disk, a read-only
folder, Ctrl-C, a kill) leaves the previous index serving and no temporary files behind.

What an update does with ids and texts (the rules of a build, `odqa.corpus.CorpusStream`):
- add: a passage whose id is already in the index is refused (upsert replaces it); one whose text equals a
  remaining passage's (with `corpus.dedup`) is not indexed, its id becomes an alias of that passage.
- delete: a passage id removes the passage and the aliases that point to it; an alias id removes the alias.
- upsert: a passage whose id is in the index replaces it (deleted there, added at the end); aliases that
  pointed to the old text are dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from odqa import checksums
from odqa.atomic import AtomicFolder
from odqa.corpus.stream import _text_key
from odqa.errors import OdqaError
from odqa.index import manifest as mf
from odqa.index.manifest import UpdateResult
from odqa.index import segments as sg
from odqa.index import store
from odqa.index.dense_updates import check_updatable, update_dense
from odqa.index.incoming import incoming as _incoming
from odqa.index.streaming import analyse_stream
from odqa.retrieval import bm25_terms as bt
from odqa.text.analyzers import make_analyzer
from odqa.types import Passage

class _State:
    """The remaining passages of an index: id -> position across segments, text digest -> position."""

    def __init__(self, folder: Path, manifest: dict, dedup: bool):
        self.folder, self.manifest = folder, manifest
        self.deleted = sg.read_deleted(folder, manifest)
        stores = sg.passage_stores(folder, manifest)
        self.passages = sg.LivePassages(stores, self.deleted)
        self.ids: dict[str, int] = {}
        self.texts: dict[bytes, int] = {}
        self.new_keys: dict[int, tuple[list[str], list[bytes]]] = {}    # keys files the next version needs
        for seg_id, st, offset in zip(sg.segment_ids(manifest), stores, self.passages.offsets):
            keys = sg.read_keys(folder, seg_id)
            if keys is None:                   # the build's segment, first update: read its passages once
                ids, digests = [], []
                for p in st:
                    ids.append(p.id)
                    digests.append(_text_key(p.text.strip()))
                self.new_keys[seg_id] = (ids, digests)
                keys = (ids, digests)
            ids, digests = keys
            gone = self.deleted[offset:offset + len(ids)]
            for i, (pid, digest) in enumerate(zip(ids, digests)):
                if not gone[i]:
                    self.ids[pid] = offset + i
                    if dedup:
                        self.texts[digest] = offset + i
        self.aliases: dict[str, str] = json.loads((folder / "aliases.json").read_text(encoding="utf-8"))

    def close(self) -> None:
        self.passages.close()


def _link_tree(src: Path, dst: Path, skip: set[str]) -> None:
    """Every file of `src` hard-linked into `dst` (copied where links are refused), but those in `skip`."""
    for f in sorted(src.rglob("*")):
        rel = f.relative_to(src).as_posix()
        if not f.is_file() or rel in skip or rel == mf.MANIFEST:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)


def _write_manifest(tmp: Path, manifest: dict, old: dict, folder: Path) -> dict:
    """The manifest, last: the checksums of files linked from `folder` carried over, the others hashed."""
    rec = old.get("checksums") or {}
    if rec.get("algorithm") != checksums.ALGORITHM:          # none recorded, or another algorithm: hash all
        return mf.write_manifest(tmp, manifest)
    files = {}
    for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
        rel = f.relative_to(tmp).as_posix()
        if rel == mf.MANIFEST or any(part.startswith(".") for part in f.relative_to(tmp).parts):
            continue
        prev, src = rec["files"].get(rel), folder / rel
        if prev and src.exists() and os.path.samefile(f, src):
            files[rel] = prev
        else:
            files[rel] = {"size": f.stat().st_size, "hash": checksums.file_digest(f)}
    return mf.write_manifest(tmp, {**manifest, "checksums": {"algorithm": rec["algorithm"], "files": files}},
                             rehash=False)


def _analyzer(manifest: dict):
    a = {**mf.ANALYZER_DEFAULTS, **manifest["analyzer"]}
    return make_analyzer(a["name"], a["pos"], decompound=a["decompound"])


def _base_counts(folder: Path, tmp: Path, manifest: dict, analyzer) -> None:
    """An index built before raw counts were kept: count the build's passages once, their terms numbered by
    bm25s's vocabulary so that the counts line up with its score arrays."""
    vocab = json.loads((folder / "bm25" / "vocab.index.json").read_text(encoding="utf-8"))
    with store.PassageStore(folder / store.PASSAGES) as passages:
        ids, local = analyse_stream(passages, analyzer, manifest["sparse"]["include_title"])
    back = np.zeros(len(local), dtype=np.int32)
    for term, i in local.items():
        back[i] = vocab[term]
    flat, ends = ids.arrays()
    sg.write_base_counts(tmp / "bm25", back[flat], ends, len(vocab))


def _minus_deleted(counts: bt.TermCounts, df: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """`df` less the terms of the documents newly marked in `gone` (bool, one per document of the segment)."""
    hit = np.flatnonzero(gone[np.asarray(counts.indices)])
    cols = np.searchsorted(np.asarray(counts.indptr), hit, side="right") - 1
    return df - np.bincount(cols, minlength=len(df))


# --- add / delete / upsert --------------------------------------------------------------------------

def update(name: str, root=None, add=None, delete: Iterable[str] = (), upsert=None, quiet: bool = True,
           device: str = "auto", encode=None) -> UpdateResult:
    """Add (`add`), delete (`delete`: ids) and replace (`upsert`) passages of local index NAME in one step.
    `add` / `upsert`: a corpus file (read with the index's corpus settings) or Passage objects / dicts.
    The caller holds the writer lock (`odqa.index.indexing.update_index`)."""
    t0 = time.perf_counter()
    folder = store.open_folder(name, root)
    old = mf.read_manifest(folder, name, root)
    mf.check_files(folder, old, name, root=store.root_flag(folder))
    check_updatable(old.get("dense"), name)
    ccfg = old.get("corpus") or {}
    state = _State(folder, old, ccfg.get("dedup", True))
    try:
        return _update(name, folder, old, state, add, list(delete), upsert, device, encode, t0)
    finally:
        state.close()


def _update(name, folder, old, state: _State, add, delete, upsert, device, encode, t0) -> UpdateResult:
    ccfg = old.get("corpus") or {}
    res = UpdateResult("updated", folder, old)
    gone: set[int] = set()
    aliases = dict(state.aliases)
    missing = []
    for pid in dict.fromkeys(delete):
        if pid in state.ids:
            gone.add(state.ids[pid])
            res.deleted.append(pid)
        elif pid in aliases:
            del aliases[pid]
            res.deleted.append(pid)
        else:
            missing.append(pid)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise OdqaError(f"index '{name}': no passage or alias with id '{missing[0]}'{more}; nothing was changed")
    incoming, new_aliases, empty, taken = [], {}, 0, set()
    for source, replace in ((add, False), (upsert, True)):
        if source is None:
            continue
        passages, batch_aliases, n_empty, label = _incoming(source, ccfg)
        empty += n_empty
        for p in passages:
            if p.id in state.ids or p.id in aliases:
                if not replace:
                    raise OdqaError(f"{label}: passage id '{p.id}' is already in index '{name}': upsert replaces "
                                    "it; nothing was changed")
                if p.id in state.ids:
                    gone.add(state.ids[p.id])
                    res.replaced.append(p.id)
                aliases.pop(p.id, None)
            if p.id in taken:
                raise OdqaError(f"{label}: passage id '{p.id}' given twice; nothing was changed")
            taken.add(p.id)
            incoming.append(p)
        new_aliases.update(batch_aliases)
    gone_ids = {state.passages.at(pos).id for pos in gone}
    aliases = {a: k for a, k in aliases.items() if k not in gone_ids}
    # texts equal to a remaining passage's become aliases of it (as a build merges them)
    kept_texts = {t: pos for t, pos in state.texts.items() if pos not in gone} if ccfg.get("dedup", True) else {}
    added = []
    for p in incoming:
        pos = kept_texts.get(_text_key(p.text.strip())) if kept_texts else None
        if pos is not None:
            res.aliased[p.id] = state.passages.at(pos).id
        else:
            added.append(p)
    for a, k in new_aliases.items():            # duplicates within the batch: point at what was kept
        new_aliases[a] = res.aliased.get(k, k)
    aliases.update(new_aliases)
    aliases.update(res.aliased)
    res.added, res.empty_skipped = [p.id for p in added], empty
    if not added and not gone and aliases == state.aliases:
        res.status, res.seconds = "unchanged", round(time.perf_counter() - t0, 3)
        return res
    res.manifest = _write(name, folder, old, state, sorted(gone), added, aliases, device, encode, t0)
    res.seconds = res.manifest["live"]["last_update"]["seconds"]
    return res


def _write(name, folder, old, state: _State, gone: list[int], added: list[Passage], aliases: dict,
           device, encode, t0) -> dict:
    live = sg.live_record(old) or {"segments": [[0, old["corpus"]["passages"]]], "next": 1}
    seg_ids = [int(s) for s, _ in live["segments"]]
    deleted = state.deleted.copy()
    newly = np.zeros(len(deleted), dtype=bool)
    newly[np.asarray(gone, dtype=np.int64)] = True
    analyzer = _analyzer(old)
    include_title = old["sparse"]["include_title"]
    rewritten = {"aliases.json", sg.DELETED} | {sg.df_file(s) for s in seg_ids}
    segments_out = [list(s) for s in live["segments"]]
    next_id = int(live.get("next", max(seg_ids) + 1))
    with AtomicFolder(folder) as tmp:
        need_base = not sg.has_counts(folder)
        if need_base:
            (tmp / "bm25").mkdir()
            _base_counts(folder, tmp, old, analyzer)
        _link_tree(folder, tmp, rewritten | ({"dense/index.faiss", "dense/owners.npy"} if old.get("dense") else set()))
        dfs, offset = {}, 0
        for seg_id, n in live["segments"]:
            counts, _ = sg.read_counts(tmp, int(seg_id))
            df = sg.read_df(folder, old, int(seg_id), counts)
            part = newly[offset:offset + int(n)]
            dfs[int(seg_id)] = _minus_deleted(counts, df, part) if part.any() else df
            offset += int(n)
        if added:
            seg = tmp / sg.seg_dir(next_id)
            seg.mkdir(parents=True)
            with store.PassageWriter(seg) as writer:
                ids, vocab = analyse_stream(added, analyzer, include_title, writer)
            counts = bt.term_counts(*ids.arrays(), len(vocab))
            sg.write_segment(seg, counts, vocab)
            sg.write_keys(tmp, next_id, [p.id for p in added], [_text_key(p.text.strip()) for p in added])
            dfs[next_id] = counts.df()
            segments_out.append([next_id, len(added)])
            deleted = np.concatenate([deleted, np.zeros(len(added), dtype=bool)])
            next_id += 1
        deleted |= np.concatenate([newly, np.zeros(len(deleted) - len(newly), dtype=bool)])
        sg.write_live(tmp, deleted, dfs)
        for seg_id, (ids_, digests) in state.new_keys.items():
            sg.write_keys(tmp, seg_id, ids_, digests)
        store.write_aliases(tmp, aliases)
        manifest = dict(old)
        if old.get("dense"):
            live_pos = state.passages.kept
            removed = np.searchsorted(live_pos, np.asarray(gone, dtype=np.int64))
            manifest["dense"] = update_dense(folder, tmp, old["dense"], len(live_pos), removed, added,
                                             include_title, device, encode)
        n_live = int((~deleted).sum())
        secs = round(time.perf_counter() - t0, 3)
        manifest["live"] = {"segments": segments_out, "next": next_id, "passages": n_live,
                            "deleted": int(deleted.sum()),
                            "last_update": {"added": len(added), "deleted": len(gone), "seconds": secs,
                                            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        manifest["updates"] = int(old.get("updates", 0)) + 1
        manifest = _write_manifest(tmp, manifest, old, folder)
    return manifest


# --- compact ----------------------------------------------------------------------------------------

def compact(name: str, root=None, quiet: bool = True) -> UpdateResult:
    """Merge the segments of local index NAME into one with precomputed scores, dropping deleted passages:
    the index a fresh build of its remaining passages makes (dense vectors are already in that order)."""
    import bm25s

    t0 = time.perf_counter()
    folder = store.open_folder(name, root)
    old = mf.read_manifest(folder, name, root)
    if not sg.live_record(old):
        return UpdateResult("unchanged", folder, old)
    mf.check_files(folder, old, name, root=store.root_flag(folder))
    from odqa.index.index import Index
    cfg = Index(name, folder, old, [], {}, []).bm25_config()
    deleted = sg.read_deleted(folder, old)
    segs = sg.read_segments(folder, old)
    live_position = np.cumsum(~deleted) - 1
    vocab: dict[str, int] = {}
    cols, docs, tfs, offset = [], [], [], 0
    for seg in segs:
        c = seg.counts
        n_cols = len(c.indptr) - 1
        names = [None] * n_cols
        for term, col in seg.vocab.items():
            if col < n_cols:
                names[col] = term
        colmap = np.array([vocab.setdefault(t, len(vocab)) if t is not None and seg.df[i] > 0 else -1
                           for i, t in enumerate(names)], dtype=np.int64)
        entry_col = np.repeat(np.arange(n_cols), np.diff(np.asarray(c.indptr)))
        glob = offset + np.asarray(c.indices, dtype=np.int64)
        keep = ~deleted[glob]
        cols.append(colmap[entry_col[keep]])
        docs.append(live_position[glob[keep]])
        tfs.append(np.asarray(c.tf)[keep])
        offset += c.n_docs
    col, doc, tf = np.concatenate(cols), np.concatenate(docs), np.concatenate(tfs)
    order = np.lexsort((doc, col))
    col, doc, tf = col[order], doc[order].astype(np.int32), tf[order]
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(np.bincount(col, minlength=len(vocab)), out=indptr[1:])
    doc_len = np.concatenate([np.asarray(s.counts.doc_len) for s in segs])[~deleted]
    counts = bt.TermCounts(tf, doc, indptr, doc_len.astype(np.int64))
    data, non = bt.precompute(counts, cfg)
    n_live = len(doc_len)
    with AtomicFolder(folder) as tmp:
        with store.PassageWriter(tmp) as writer:
            writer.write(sg.LivePassages(sg.passage_stores(folder, old), deleted))
        shutil.copy2(folder / "aliases.json", tmp / "aliases.json")
        model = bm25s.BM25(method=cfg.method, k1=cfg.k1, b=cfg.b, delta=cfg.delta)
        model.scores = {"data": data, "indices": doc, "indptr": indptr, "num_docs": n_live}
        model.vocab_dict = vocab
        model.nonoccurrence_array = non
        model.save(str(tmp / "bm25"), show_progress=False)
        shutil.copy2(folder / "bm25" / "odqa.json", tmp / "bm25" / "odqa.json")
        np.save(tmp / "bm25" / sg.TF, tf)
        np.save(tmp / "bm25" / sg.DOC_LEN, counts.doc_len)
        if old.get("dense"):
            _link_tree(folder / "dense", tmp / "dense", set())
        manifest = {k: v for k, v in old.items() if k != "live"}
        manifest["corpus"] = {**old["corpus"], "passages": n_live}
        manifest["compacted_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = mf.write_manifest(tmp, manifest)
    return UpdateResult("compacted", folder, manifest, seconds=round(time.perf_counter() - t0, 3))
