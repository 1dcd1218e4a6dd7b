"""Dense shards: the passage vectors of an index encoded in N slices, anywhere, then merged into one index.

`odqa index CORPUS --name NAME --dense --shard I/N` reads the corpus exactly as a full build does (same
passages, de-duplication, chunking), takes slice I of N (a contiguous range of passages, so all windows of
a passage stay in one shard), encodes only that and writes `INDEX_DIR/NAME.shards/I-of-N/`:

    vectors.npy   float32, one row per passage (or per window)
    owners.npy    int64, the corpus position of each row's passage
    shard.json    what the vectors depend on (corpus sha256 and passage count, corpus and title settings,
                  passage encoder checksum, max length, window stride, quantize, e5 prefixes), I, N, the
                  passage range, the row count, and the size and checksum of both files

The folder is written aside and renamed into place (`odqa.atomic`), so a shard is there whole or not at
all; one already there for the same inputs is not encoded again. `--merge` (`build_index(shards=...)`)
checks that the N shards are all there, of this corpus and these settings, with contiguous ranges and
intact files, refusing the first that is not in one line naming it and the field that differs; the
backend then stores their vectors as it would have stored its own (`odqa.index.local`,
`odqa.index.elastic.build`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odqa import checksums
from odqa.version import __version__
from odqa.atomic import AtomicFolder, recover
from odqa.config import IndexConfig
from odqa.corpus import Corpus
from odqa.errors import IndexCorrupt, OdqaError
from odqa.index import manifest as mf
from odqa.index import store

SHARD_MANIFEST = "shard.json"
KIND = "odqa-dense-shard"
SHARD_FORMAT = 1
# what the stored vectors depend on (the FAISS index type is not: the merge builds it)
VECTOR_FIELDS = ("passage_sha256", "max_length", "window_stride", "quantize", "e5_prefixes")
_FOLDER = re.compile(r"(\d+)-of-(\d+)")


def parse_shard(spec: str | tuple[int, int]) -> tuple[int, int]:
    """'I/N' (1 <= I <= N) -> (I, N)."""
    if isinstance(spec, tuple):
        i, n = spec
    else:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
        if not m:
            raise OdqaError(f"`shard` '{spec}': write it as I/N, e.g. 2/4 (shard 2 of 4, counted from 1)")
        i, n = int(m[1]), int(m[2])
    if not 1 <= i <= n:
        raise OdqaError(f"`shard` {i}/{n}: I counts from 1 to N")
    return i, n


def label(i: int, n: int) -> str:
    return f"{i}-of-{n}"


def shard_range(passages: int, i: int, n: int) -> tuple[int, int]:
    """The passages [start, end) of shard I of N: N contiguous ranges differing by at most one passage."""
    return (i - 1) * passages // n, i * passages // n


def shards_root(name: str, root=None, shard_dir: str | Path | None = None) -> Path:
    """Where the shards of index NAME live: `shard_dir`, else `INDEX_DIR/NAME.shards/`."""
    return Path(shard_dir) if shard_dir else store.index_root(root) / f"{store.check_name(name)}.shards"


def shard_command(corpus: str, name: str, i: int, n: int, force: bool = False) -> str:
    return f"odqa index {corpus} --name {name} --dense --shard {i}/{n}{' --force' if force else ''}"


def expected(corpus: Corpus, cfg: IndexConfig, settings: dict) -> dict:
    """What every shard of this corpus and these settings records (compared field by field at merge)."""
    dense = settings["dense"]
    # a loaded corpus, or a stream (`odqa.corpus.CorpusStream`) once read: the index build streams its corpus
    passages = len(corpus.passages) if hasattr(corpus, "passages") else corpus.n_passages
    return {"corpus": {"path": corpus.source, "sha256": corpus.sha256, "passages": passages,
                       **settings["corpus"]},
            "include_title": cfg.include_title,
            "vectors": {"encoder": dense["encoder"], **{k: dense[k] for k in VECTOR_FIELDS}}}


def read_corpus(path: str | Path, cfg: IndexConfig) -> Corpus:
    """The corpus as a build of `cfg` reads it (the same passages, in the same order)."""
    from odqa.corpus import load_corpus
    c = cfg.corpus
    return load_corpus(Path(path), c.format, c.chunk_size, c.chunk_overlap, c.dedup, c.encoding, c.fields())


def settings_of(cfg: IndexConfig) -> dict:
    """The build settings of `cfg` with its dense part on (what shards are encoded with)."""
    from odqa.config import with_changes
    return mf.build_settings(with_changes(cfg, dense=with_changes(cfg.dense, enabled=True)), {})


def recorded_corpus(base: Path) -> str | None:
    """The corpus path the shards under `base` record (for a merge that names no corpus)."""
    import json
    for folders in _folders(base).values():
        for folder in folders:
            try:
                return json.loads((folder / SHARD_MANIFEST).read_text(encoding="utf-8"))["corpus"]["path"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return None


@dataclass
class ShardSource:
    """Where a merging build takes its vectors from: the shards under `base` (`count`: which N, when
    shards of several counts are there)."""
    base: Path
    count: int = 0

    def load(self, corpus: Corpus, cfg: IndexConfig, settings: dict, name: str) -> "ShardSet":
        return load_shards(self.base, corpus, cfg, settings, name, self.count)


# ------------------------------------------------------------------ writing one shard
@dataclass
class ShardResult:
    status: str              # built | rebuilt | up-to-date
    folder: Path
    manifest: dict

    def to_json(self, name: str) -> dict:
        m = self.manifest
        return {"status": self.status, "index": name, "shard": label(m["shard"], m["of"]), "path": str(self.folder),
                "manifest": m}


def write_shard(folder: Path, want: dict, name: str, i: int, n: int, start: int, vectors: np.ndarray,
                owners: np.ndarray, seconds: float, encoded_by: str = "command") -> dict:
    """Write shard I of N (vectors of passages [start, start + count)) atomically; returns its manifest."""
    end = shard_range(want["corpus"]["passages"], i, n)[1]
    with AtomicFolder(folder) as tmp:
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        np.save(tmp / "owners.npy", np.asarray(owners, dtype=np.int64))
        manifest = {"kind": KIND, "format_version": SHARD_FORMAT, "odqa_version": __version__, "index": name,
                    "shard": i, "of": n, **want, "passages": [start, end], "rows": int(len(vectors)),
                    "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0, "encoded_by": encoded_by,
                    "encode_seconds": round(seconds, 3),
                    "passages_per_second": round((end - start) / seconds, 1) if seconds else None,
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "checksums": checksums.record(tmp, skip=(SHARD_MANIFEST,))}
        manifest[mf.SELF_CHECKSUM] = mf.self_checksum(manifest)
        mf.write_json(tmp / SHARD_MANIFEST, manifest)
    return manifest


def encode_shard(corpus: Corpus, cfg: IndexConfig, settings: dict, name: str, i: int, n: int, folder: Path,
                 force: bool = False, quiet: bool = False, device: str = "auto") -> ShardResult:
    """Encode shard I of N of `corpus` into `folder`, unless a shard of the same inputs is there, intact."""
    from odqa.progress import bar
    from odqa.retrieval.dense import DenseEncoder, encode_label, passage_ids
    from odqa.retrieval.sparse import passage_text
    want = expected(corpus, cfg, settings)
    recover(folder)
    had = (folder / SHARD_MANIFEST).exists()
    if had and not force:
        try:
            return ShardResult("up-to-date", folder, check_shard(folder, want, i, n, corpus.source, name))
        except OdqaError:
            pass                          # another corpus, settings or a damaged file: encode it again
    start, end = shard_range(len(corpus.passages), i, n)
    d = cfg.dense
    enc = DenseEncoder(d.encoder, d.max_length, d.batch_size, d.quantize, d.threads, device=device)
    t0 = time.perf_counter()
    texts = [passage_text(p, cfg.include_title) for p in corpus.passages[start:end]]
    ids, owners = passage_ids(enc, texts, d.window_stride)
    what, unit = encode_label(d.window_stride)
    with bar(len(ids), f"{what} (shard {label(i, n)})", unit, quiet) as pb:
        vectors = enc.encode_ids(ids, pb.update) if ids else np.zeros((0, enc.dim), dtype=np.float32)
    rows = np.arange(len(texts)) if owners is None else owners
    manifest = write_shard(folder, want, name, i, n, start, vectors, rows + start, time.perf_counter() - t0)
    return ShardResult("rebuilt" if had else "built", folder, manifest)


# ------------------------------------------------------------------ checking and merging
def _short(value) -> str:
    text = str(value)
    return text[:12] if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32,}", text) else text


def _differs(have: dict, want: dict) -> str | None:
    """'FIELD differs (HAVE vs WANT)' for the first recorded setting that is not what this build uses."""
    for key, label_ in (("sha256", "corpus"), ("passages", "corpus passages")):
        if have["corpus"].get(key) != want["corpus"][key]:
            return (f"{label_} differs ({key} {_short(have['corpus'].get(key))} in the shard vs "
                    f"{_short(want['corpus'][key])} here)")
    for key, value in want["corpus"].items():
        if key not in ("sha256", "passages", "path") and have["corpus"].get(key) != value:
            return f"corpus.{key} differs ({have['corpus'].get(key)} in the shard vs {value} here)"
    if have.get("include_title") != want["include_title"]:
        return f"include_title differs ({have.get('include_title')} in the shard vs {want['include_title']} here)"
    hv, wv = have.get("vectors") or {}, want["vectors"]
    if hv.get("passage_sha256") != wv["passage_sha256"]:
        return (f"encoder differs ({hv.get('encoder')} sha256 {_short(hv.get('passage_sha256'))} in the shard vs "
                f"{wv['encoder']} sha256 {_short(wv['passage_sha256'])} here)")
    for key in VECTOR_FIELDS[1:]:
        if hv.get(key) != wv[key]:
            return f"dense.{key} differs ({hv.get(key)} in the shard vs {wv[key]} here)"
    return None


def check_shard(folder: Path, want: dict, i: int, n: int, corpus: str, name: str) -> dict:
    """The manifest of shard I of N in `folder`, checked against `want` and its own files; refused in one line
    (`shard I-of-N (FOLDER): WHAT; HOW TO FIX`)."""
    import json
    where = f"shard {label(i, n)} ({folder})"
    redo = f"re-encode it with `{shard_command(corpus, name, i, n, force=True)}` and this build's settings"
    path = folder / SHARD_MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OdqaError(f"{where}: {SHARD_MANIFEST} missing; {redo}") from None
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"{where}: unreadable {SHARD_MANIFEST} ({e.__class__.__name__}); {redo}") from None
    if not isinstance(m, dict) or m.get("kind") != KIND or m.get(mf.SELF_CHECKSUM) != mf.self_checksum(m):
        raise IndexCorrupt(f"{where}: {SHARD_MANIFEST} is not an intact odqa shard manifest; {redo}")
    if m.get("format_version") != SHARD_FORMAT:
        raise OdqaError(f"{where}: shard format {m.get('format_version')}, this odqa reads {SHARD_FORMAT}; {redo}")
    if (m.get("shard"), m.get("of")) != (i, n):
        raise OdqaError(f"{where}: it records shard {m.get('shard')} of {m.get('of')}; {redo}")
    why = _differs(m, want)
    if why:
        raise OdqaError(f"{where}: {why}; {redo}")
    start, end = shard_range(want["corpus"]["passages"], i, n)
    if m.get("passages") != [start, end]:
        raise OdqaError(f"{where}: passages {m.get('passages')} differ from [{start}, {end}) of {n} contiguous "
                        f"shards; {redo}")
    found = checksums.problems(folder, m["checksums"])
    if found:
        raise IndexCorrupt(f"{where}: {found[0]}; {redo}")
    return m


def _folders(base: Path) -> dict[int, list[Path]]:
    """Shard count N -> the shard folders `I-of-N` under `base` (finished ones: hidden temporaries are not)."""
    out: dict[int, list[Path]] = {}
    for p in sorted(base.iterdir()) if base.is_dir() else []:
        m = _FOLDER.fullmatch(p.name)
        if m and p.is_dir():
            out.setdefault(int(m[2]), []).append(p)
    return out


@dataclass
class ShardSet:
    """N checked shards, in order."""
    base: Path
    manifests: list[dict]

    def vectors(self, quiet: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """All rows in corpus order: (vectors, owners), the owners checked against each shard's range."""
        from odqa.progress import bar
        vecs, owners = [], []
        with bar(len(self.manifests), "merging dense shards", "shard", quiet) as pb:
            for m in self.manifests:
                folder = self.base / label(m["shard"], m["of"])
                v = np.load(folder / "vectors.npy", allow_pickle=False)
                o = np.load(folder / "owners.npy", allow_pickle=False)
                start, end = m["passages"]
                if (v.ndim != 2 or len(v) != m["rows"] or len(o) != len(v) or (len(v) and v.shape[1] != self.dim)
                        or (len(o) == 0) != (start == end)
                        or (len(o) and (o[0] != start or o[-1] != end - 1 or (np.diff(o) < 0).any()
                                        or (np.diff(o) > 1).any()))):
                    raise IndexCorrupt(f"shard {label(m['shard'], m['of'])} ({folder}): vectors and owners do not "
                                       f"cover passages [{start}, {end}) in order; re-encode it with `force`")
                if len(v):
                    vecs.append(v)
                    owners.append(o)
                pb.update(1)
        return np.concatenate(vecs), np.concatenate(owners)

    @property
    def dim(self) -> int:
        return max(m["dim"] for m in self.manifests)

    def stats(self) -> dict:
        secs = sum(m["encode_seconds"] for m in self.manifests)
        passages = self.manifests[-1]["passages"][1]
        return {"dim": self.dim, "vectors": sum(m["rows"] for m in self.manifests),
                "encode_seconds": round(secs, 2),
                "passages_per_second": round(passages / secs, 1) if secs else None,
                "shards": {"count": len(self.manifests), "encoded_by": sorted({m["encoded_by"] for m in self.manifests}),
                           "encode_seconds": [m["encode_seconds"] for m in self.manifests]}}


def load_shards(base: Path, corpus: Corpus, cfg: IndexConfig, settings: dict, name: str, count: int = 0) -> ShardSet:
    """The complete, consistent set of shards under `base` for this corpus and these settings (`count`: the N
    to use when shards of several counts are there)."""
    if not settings.get("dense"):
        raise OdqaError("merging shards builds the dense part: add `dense`")
    found = _folders(base)
    if not found:
        raise OdqaError(f"no dense shards of index '{name}' in {base}/: encode them with "
                        f"`{shard_command(corpus.source, name, 1, count or 4)}` (for each I of N)")
    if count and count not in found:
        raise OdqaError(f"no shards of {count} in {base}/ (there are shards of {', '.join(map(str, sorted(found)))})")
    if not count and len(found) > 1:
        raise OdqaError(f"{base}/ holds shards of {len(found)} different counts ({', '.join(map(str, sorted(found)))}):"
                        f" choose one with `shards` N, or delete the others")
    n = count or next(iter(found))
    want = expected(corpus, cfg, settings)
    missing = [label(i, n) for i in range(1, n + 1) if not (base / label(i, n)).is_dir()]
    if missing:
        first = int(missing[0].split("-")[0])
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise OdqaError(f"shard {missing[0]} of index '{name}' missing in {base}/{more}: encode it with "
                        f"`{shard_command(corpus.source, name, first, n)}`")
    manifests = [check_shard(base / label(i, n), want, i, n, corpus.source, name) for i in range(1, n + 1)]
    filled = [m for m in manifests if m["rows"]]        # a shard of no passages has no dim
    odd = next((m for m in filled if m["dim"] != filled[0]["dim"]), None)
    if odd:
        raise OdqaError(f"shard {label(odd['shard'], n)} ({base / label(odd['shard'], n)}): dim differs "
                        f"({odd['dim']} vs {filled[0]['dim']} in shard {label(filled[0]['shard'], n)})")
    return ShardSet(base, manifests)
