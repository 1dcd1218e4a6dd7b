"""Dense shards encoded by Ray Data batch inference (the optional `ray` extra: `pip install odqa[ray]`).

The passages of the shards still to encode become a `ray.data` dataset; `map_batches` sends batches of
them to a pool of actors (`PassageEncoder`), each holding one `DenseEncoder`, which tokenise and encode
them exactly as a single-process build does (`dense.passage_ids`: each passage on its own, all of its
windows in one batch). The driver gathers the rows by shard and writes each shard, when complete, with
`shards.write_shard`: the same folders and checks as `odqa index --shard I/N`, so the merge that follows
(and a later run, which skips the shards already there) does not know how they were made.

With RAY_ADDRESS set the work goes to that cluster (odqa, the corpus, the encoder and the shard folder
must then be reachable from its nodes under the same paths); without it a local Ray instance is started
with `num_cpus` CPUs, one actor per CPU, and shut down after.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from odqa.config import IndexConfig, to_dict
from odqa.errors import OdqaError
from odqa.settings import env
from odqa.index import shards as sh

RAY_BATCH = 256        # passages per map_batches call (the actor batches them by length, dense.batch_size at a time)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise OdqaError("`ray` needs Ray: pip install 'odqa[ray]' (or run the shards as commands: "
                        "odqa index CORPUS --name NAME --dense --shard I/N, for each I of N)") from None
    return ray


class PassageEncoder:
    """A Ray actor: one DenseEncoder, made once; each call encodes a batch of {pos, text} rows into
    {pos, win, vector, seconds} rows (one per passage, or per window)."""

    def __init__(self, dense: dict, device: str = "auto"):
        from odqa.config import DenseConfig
        from odqa.retrieval.dense import DenseEncoder
        self.cfg = d = DenseConfig(**dense)
        self.encoder = DenseEncoder(d.encoder, d.max_length, d.batch_size, d.quantize, d.threads, device=device)

    def __call__(self, batch: dict) -> dict:
        from odqa.retrieval.dense import passage_ids
        t0 = time.perf_counter()
        pos = np.asarray(batch["pos"], dtype=np.int64)
        ids, owners = passage_ids(self.encoder, [str(t) for t in batch["text"]], self.cfg.window_stride)
        vectors = self.encoder.encode_ids(ids)
        owners = np.arange(len(pos)) if owners is None else owners
        starts = np.searchsorted(owners, owners, side="left")      # first row of each row's passage
        secs = time.perf_counter() - t0
        return {"pos": pos[owners], "win": np.arange(len(owners)) - starts, "vector": vectors,
                "seconds": np.full(len(owners), secs / max(len(pos), 1))}


def _start(ray, num_cpus: int, quiet: bool) -> bool:
    """Connect to RAY_ADDRESS, or start a local instance; True when this call started it."""
    if ray.is_initialized():
        return False
    address = env().ray_address
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=not quiet)
        return True
    src = str(Path(__file__).resolve().parents[2])            # the workers import this odqa, not another one
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    # the workers do the job here: Ray's default niceness (15) leaves them starved on a busy machine
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=not quiet,
             _system_config={"worker_niceness": 0},
             runtime_env={"env_vars": {"PYTHONPATH": path, "ODQA_QUIET": "1", "TOKENIZERS_PARALLELISM": "false"}})
    return True


def encode_shards_ray(corpus_path: str | Path, name: str, cfg: IndexConfig, n: int, root=None,
                      shard_dir: str | Path | None = None, force: bool = False, quiet: bool = False,
                      num_cpus: int = 0, device: str = "auto") -> list[sh.ShardResult]:
    """Encode the N dense shards of index NAME with Ray (those already there for the same inputs are kept)."""
    if n < 1:
        raise OdqaError(f"`shards` {n}: give at least 1")
    ray = import_ray()
    corpus = sh.read_corpus(corpus_path, cfg)
    settings = sh.settings_of(cfg)
    want = sh.expected(corpus, cfg, settings)
    base = sh.shards_root(name, root, shard_dir)
    results: dict[int, sh.ShardResult] = {}
    for i in range(1, n + 1):
        folder = base / sh.label(i, n)
        if force or not (folder / sh.SHARD_MANIFEST).exists():
            continue
        try:
            results[i] = sh.ShardResult("up-to-date", folder,
                                        sh.check_shard(folder, want, i, n, corpus.source, name))
        except OdqaError:
            pass
    todo = [i for i in range(1, n + 1) if i not in results]
    if not todo:
        return [results[i] for i in range(1, n + 1)]
    return _run(ray, corpus, cfg, want, name, n, todo, base, results, quiet,
                num_cpus or max(1, min(len(todo), os.cpu_count() or 1)), device)


def _run(ray, corpus, cfg: IndexConfig, want: dict, name: str, n: int, todo: list[int], base: Path,
         results: dict, quiet: bool, num_cpus: int, device: str) -> list[sh.ShardResult]:
    from odqa.progress import bar
    from odqa.retrieval.sparse import passage_text
    ranges = {i: sh.shard_range(len(corpus.passages), i, n) for i in todo}
    rows = [{"pos": k, "text": passage_text(corpus.passages[k], cfg.include_title)}
            for i in todo for k in range(*ranges[i])]
    had = {i: (base / sh.label(i, n) / sh.SHARD_MANIFEST).exists() for i in todo}
    started = _start(ray, num_cpus, quiet)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False          # odqa's own bar below
        actors = max(1, min(num_cpus, len(rows) // RAY_BATCH + 1)) if not env().ray_address else num_cpus
        out = ray.data.from_items(rows).map_batches(
            PassageEncoder, fn_constructor_kwargs={"dense": to_dict(cfg.dense), "device": device},
            batch_size=RAY_BATCH, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
        got: dict[int, list[dict]] = {i: [] for i in todo}
        done = {i: 0 for i in todo}
        starts = sorted((ranges[i][0], i) for i in todo)
        first = [s for s, _ in starts]
        for i in todo:                            # a shard of no passages is complete at once
            if ranges[i][0] == ranges[i][1]:
                results[i] = _write(base, want, name, i, n, ranges[i][0], [], had[i], cfg)
        with bar(len(rows), f"encoding {len(todo)} shard(s) on Ray", "passage", quiet) as pb:
            for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                shard_of = np.asarray([starts[j][1] for j in np.searchsorted(first, batch["pos"], "right") - 1])
                for i in np.unique(shard_of):
                    keep = shard_of == i
                    got[int(i)].append({k: v[keep] for k, v in batch.items()})
                    new = int((batch["win"][keep] == 0).sum())
                    done[int(i)] += new
                    pb.update(new)
                    start, end = ranges[int(i)]
                    if done[int(i)] == end - start:
                        results[int(i)] = _write(base, want, name, int(i), n, start, got.pop(int(i)), had[int(i)],
                                                 cfg)
    finally:
        if started:
            ray.shutdown()
    missing = [sh.label(i, n) for i in todo if i not in results]
    if missing:
        raise OdqaError(f"Ray returned too few rows for shard(s) {', '.join(missing)}: not written")
    return [results[i] for i in range(1, n + 1)]


def _write(base: Path, want: dict, name: str, i: int, n: int, start: int, parts: list[dict], had: bool,
           cfg: IndexConfig) -> sh.ShardResult:
    """Write shard I from the rows Ray returned for it, in corpus order (passage, then window)."""
    if parts:
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.lexsort((rows["win"], rows["pos"]))
        vectors, owners, secs = rows["vector"][order], rows["pos"][order], float(rows["seconds"].sum())
    else:
        vectors, owners, secs = np.zeros((0, 0), np.float32), np.zeros(0, np.int64), 0.0
    folder = base / sh.label(i, n)
    manifest = sh.write_shard(folder, want, name, i, n, start, vectors, owners, secs, encoded_by="ray")
    return sh.ShardResult("rebuilt" if had else "built", folder, manifest)
