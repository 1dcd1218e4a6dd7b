"""`odqa index`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import IndexDirOpt, JsonOpt, QuietOpt, echo, emit_json, index_config
from odqa.retrieval.indexing import build_index


def index(
    corpus: Path = typer.Argument(..., help="Corpus file or folder (wiki JSON, JSONL, SQuAD/KorQuAD JSON, .txt folder)."),
    name: str = typer.Option(..., "--name", "-n", help="Index name; stored in INDEX_DIR/NAME."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (see configs/default.yaml)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Override a config field: --set bm25.k1=1.5"),
    fmt: Optional[str] = typer.Option(None, "--format", help="auto|wiki|jsonl|squad|txt"),
    analyzer: Optional[str] = typer.Option(None, "--analyzer", help="mecab|kiwi|whitespace|char-ngram"),
    method: Optional[str] = typer.Option(None, "--method", help="BM25 variant: atire|robertson|lucene|bm25l|bm25+"),
    k1: Optional[float] = typer.Option(None, "--k1"),
    b: Optional[float] = typer.Option(None, "--b"),
    dense: bool = typer.Option(False, "--dense", help="Also build the dense (bi-encoder + FAISS) index."),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Dense encoder spec (default offline:multilingual-e5-small)."),
    dense_index: Optional[str] = typer.Option(None, "--dense-index", help="flat | hnsw | ivf"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Dense encoding: none | int8"),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the index is up to date."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Build an index from CORPUS.

    Example: odqa index wikipedia_documents.json --name wiki --dense --set bm25.k1=1.2
    """
    cfg = index_config(config, overrides, **{"corpus.format": fmt, "analyzer.name": analyzer,
                                              "bm25.method": method, "bm25.k1": k1, "bm25.b": b,
                                              "dense.enabled": True if dense else None, "dense.encoder": encoder,
                                              "dense.index": dense_index, "dense.quantize": quantize})
    res = build_index(corpus, name, cfg, index_dir, force=force, quiet=quiet or json_out)
    m = res.manifest
    if json_out:
        emit_json({"status": res.status, "index": name, "path": str(res.folder), "changed": res.reasons,
                   "manifest": m})
        return
    c = m["corpus"]
    if res.status == "up-to-date":
        echo(f"index '{name}' is up to date ({c['passages']} passages); use --force to rebuild")
        return
    echo(f"{res.status} index '{name}' at {res.folder}: {c['passages']} passages "
         f"({c['duplicates_merged']} duplicates merged), analyzer {m['analyzer']['name']}, "
         f"BM25 {m['sparse']['method']} k1={m['sparse']['k1']} b={m['sparse']['b']}, {m['build_seconds']:.1f}s")
    if m.get("dense"):
        d = m["dense"]
        echo(f"  dense: {d['encoder']} dim {d['dim']}, {d['index']} index, {d.get('passages_per_second')} passages/s")
    if res.reasons:
        echo(f"  rebuilt because of: {', '.join(res.reasons)}")
