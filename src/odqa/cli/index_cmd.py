"""`odqa index`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import DeviceOpt, EncodingOpt, IndexDirOpt, JsonOpt, QuietOpt, echo, emit_json, index_config
from odqa.api import IndexCorrupt, OdqaError

ES_PANEL = "Elasticsearch (--backend elasticsearch)"
SHARD_PANEL = "Sharded dense encoding"


def index(
    ctx: typer.Context,
    corpus: Optional[Path] = typer.Argument(None, help="Corpus file or folder (wiki JSON, JSONL, SQuAD/KorQuAD "
                                            "JSON, .txt folder, Parquet, CSV, TSV, datasets folder); not with --verify."),
    name: str = typer.Option(..., "--name", "-n", help="Index name; stored in INDEX_DIR/NAME."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (see configs/default.yaml)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Override a config field: --set bm25.k1=1.5"),
    fmt: Optional[str] = typer.Option(None, "--format", help="auto|wiki|jsonl|squad|txt|parquet|csv|tsv|datasets"),
    encoding: Optional[str] = EncodingOpt,
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field (JSONL key, table column) holding the "
                                           "passage id (default: id, doc_id or document_id)."),
    title_field: Optional[str] = typer.Option(None, "--title-field", help="Field holding the title (default: title)."),
    text_field: Optional[str] = typer.Option(None, "--text-field", help="Field holding the text (default: text, "
                                             "contents or content)."),
    metadata_fields: Optional[str] = typer.Option(None, "--metadata-fields", help="Comma-separated fields kept as "
                                                  "metadata for --filter (default: every other field)."),
    analyzer: Optional[str] = typer.Option(None, "--analyzer", help="mecab|kiwi|whitespace|char-ngram"),
    decompound: Optional[str] = typer.Option(None, "--decompound", help="mecab: index compound words' parts "
                                             "too: none | mixed (parts and whole) | discard (parts alone)."),
    method: Optional[str] = typer.Option(None, "--method", help="BM25 variant: atire|robertson|lucene|bm25l|bm25+"),
    k1: Optional[float] = typer.Option(None, "--k1"),
    b: Optional[float] = typer.Option(None, "--b"),
    dense: Optional[bool] = typer.Option(None, "--dense/--no-dense", help="Build the dense (bi-encoder + FAISS) "
                                         "index / drop it. Neither: an index keeps the vectors it has."),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Dense encoder spec (default offline:multilingual-e5-small)."),
    dense_index: Optional[str] = typer.Option(None, "--dense-index", help="flat | hnsw | ivf | ivfpq"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Dense encoding: none | int8 | onnx | onnx-int8"),
    window_stride: Optional[int] = typer.Option(None, "--window-stride", help="Dense: split passages longer than "
                                                "dense.max_length into windows this many tokens apart (0 = cut)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the index is up to date."),
    wait: bool = typer.Option(False, "--wait", help="If another process is building this index, wait for it "
                              "(default: stop at once, saying so)."),
    verify: bool = typer.Option(False, "--verify", help="Check every file of index NAME against its manifest "
                                "(sizes and checksums) and report; builds nothing."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Encode only dense shard I/N (I from 1) of the corpus "
                                        "into the shard folder; merge the N shards with --merge.",
                                        rich_help_panel=SHARD_PANEL),
    merge: bool = typer.Option(False, "--merge", help="Build index NAME with the vectors of its dense shards "
                               "(all N, of this corpus and settings) instead of encoding; CORPUS defaults to the "
                               "one they record.", rich_help_panel=SHARD_PANEL),
    ray: bool = typer.Option(False, "--ray", help="Encode the dense shards with Ray Data (odqa's ray extra; "
                             "on $RAY_ADDRESS, else a local instance), then merge them.",
                             rich_help_panel=SHARD_PANEL),
    shards: int = typer.Option(0, "--shards", help="--ray: how many shards (default 4); --merge: which count, "
                               "when shards of several are there.", rich_help_panel=SHARD_PANEL),
    shard_dir: Optional[Path] = typer.Option(None, "--shard-dir", help="Folder of the shards (default "
                                             "INDEX_DIR/NAME.shards).", rich_help_panel=SHARD_PANEL),
    ray_cpus: int = typer.Option(0, "--ray-cpus", help="--ray without $RAY_ADDRESS: CPUs of the local Ray "
                                 "instance (default: one per shard, at most this machine's).",
                                 rich_help_panel=SHARD_PANEL),
    backend: Optional[str] = typer.Option(None, "--backend", help="local (default) | elasticsearch"),
    es_url: Optional[str] = typer.Option(None, "--es-url", help="Elasticsearch URL (default $ODQA_ES_URL).",
                                         rich_help_panel=ES_PANEL),
    es_api_key: Optional[str] = typer.Option(None, "--es-api-key", help="API key (better: $ODQA_ES_API_KEY).",
                                             rich_help_panel=ES_PANEL),
    es_user: Optional[str] = typer.Option(None, "--es-user", help="Basic-auth user ($ODQA_ES_USER); the password "
                                          "comes from $ODQA_ES_PASSWORD.", rich_help_panel=ES_PANEL),
    es_ca: Optional[Path] = typer.Option(None, "--es-ca", help="CA certificate file ($ODQA_ES_CA).",
                                         rich_help_panel=ES_PANEL),
    es_insecure: bool = typer.Option(False, "--es-insecure", help="Do not verify TLS certificates (testing only).",
                                     rich_help_panel=ES_PANEL),
    allow_fallback: bool = typer.Option(False, "--allow-fallback", help="Without the nori plugin, use the cjk "
                                        "analyzer instead of failing.", rich_help_panel=ES_PANEL),
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Build an index from CORPUS, locally or on Elasticsearch (--backend elasticsearch).

    Example: odqa index wikipedia_documents.json --name wiki --dense --set bm25.k1=1.2

    Elasticsearch: odqa index wiki.json --name wiki --backend elasticsearch --es-url http://localhost:9200

    Check an index: odqa index --verify --name wiki

    Dense vectors in N shards: odqa index wiki.json --name wiki --dense --shard I/N (for I in 1..N, anywhere),
    then odqa index wiki.json --name wiki --dense --merge; or both on Ray: --dense --ray --shards N
    """
    if verify:
        return _verify(name, index_dir, json_out)
    if sum(map(bool, (shard, merge, ray))) > 1:
        raise OdqaError("choose one of --shard, --merge and --ray")
    if shard_dir and not (shard or merge or ray):
        raise OdqaError("--shard-dir goes with --shard, --merge or --ray")
    if corpus is None and not merge:
        raise typer.BadParameter("give the corpus file or folder to index (or --verify to check index NAME)",
                                 ctx=ctx, param_hint="'CORPUS'")
    if dense is None and (encoder or dense_index or quantize or window_stride is not None or shard or merge or ray):
        dense = True                      # a dense setting asks for the dense part
    fields = {f"corpus.{k}": None if v is None else json.dumps(v, ensure_ascii=False) for k, v in
              {"id_field": id_field, "title_field": title_field, "text_field": text_field,
               "metadata_fields": metadata_fields}.items()}
    cfg = index_config(config, overrides, **fields, **{"corpus.format": fmt, "corpus.encoding": encoding,
                                              "analyzer.name": analyzer, "analyzer.decompound": decompound,
                                              "bm25.method": method, "bm25.k1": k1, "bm25.b": b,
                                              "dense.enabled": dense, "dense.encoder": encoder,
                                              "dense.index": dense_index, "dense.quantize": quantize,
                                              "dense.window_stride": window_stride,
                                              "backend": backend,
                                              "elastic.allow_fallback": True if allow_fallback else None})
    connection = None
    es_flags = es_url or es_api_key or es_user or es_ca or es_insecure
    if cfg.backend == "elasticsearch":
        from odqa.api.indexes import es_connection
        connection = es_connection(es_url, es_api_key, es_user, ca_certs=str(es_ca) if es_ca else None,
                                   verify=False if es_insecure else None, timeout=cfg.elastic.timeout)
    elif es_flags:
        raise OdqaError("--es-* options need --backend elasticsearch")
    if shard:
        return _shard(corpus, name, shard, cfg, index_dir, shard_dir, force, quiet or json_out, device, json_out)
    quiet = quiet or json_out
    if ray:
        from odqa.api.indexes import build_index_ray
        res = build_index_ray(corpus, name, shards or 4, cfg, index_dir=index_dir, shard_dir=shard_dir, force=force,
                              quiet=quiet, connection=connection, wait=wait, num_cpus=ray_cpus, device=device)
    else:
        from odqa.api.indexes import build_index
        res = build_index(corpus, name, cfg, index_dir=index_dir, force=force, quiet=quiet, connection=connection,
                          wait=wait, device=device, shards=(shard_dir or True) if merge else None,
                          shard_count=shards)
    m = res.manifest
    if json_out:
        emit_json({"status": res.status, "index": name, "path": str(res.folder), "changed": res.reasons,
                   "parts": res.parts, "manifest": m})
        return
    c = m["corpus"]
    if res.status == "up-to-date":
        kept = " with its dense vectors" if m.get("dense") else ""
        echo(f"index '{name}' is up to date ({c['passages']} passages{kept}); use --force to rebuild")
        return
    es = m.get("elasticsearch")
    where = f"on Elasticsearch {es['url']} (alias {name} -> {es['index']})" if es else f"at {res.folder}"
    echo(f"{res.status} index '{name}' {where}: {c['passages']} passages "
         f"({c['duplicates_merged']} duplicates merged, {c.get('empty_skipped', 0)} empty skipped), "
         f"analyzer {m['analyzer']['name']}, "
         f"BM25 {m['sparse']['method']} k1={m['sparse']['k1']} b={m['sparse']['b']}, {m['build_seconds']:.1f}s")
    if m.get("dense"):
        d = m["dense"]
        sharded = f" (merged from {d['shards']['count']} shards)" if d.get("shards") else ""
        echo(f"  dense: {d['encoder']} dim {d['dim']}, {d['index']} index, {d.get('passages_per_second')} "
             f"passages/s{sharded}")
    if res.reasons:
        echo(f"  rebuilt because of: {', '.join(res.reasons)}")
    if res.parts:
        echo("  " + "; ".join(f"{fate}: {', '.join(p for p, f in res.parts.items() if f == fate)}"
                              for fate in ("built", "rebuilt", "kept", "dropped") if fate in res.parts.values()))


def _shard(corpus: Path, name: str, shard: str, cfg, index_dir: Optional[Path], shard_dir: Optional[Path],
           force: bool, quiet: bool, device: str, json_out: bool) -> None:
    from odqa.api.indexes import encode_shard
    res = encode_shard(corpus, name, shard, cfg, index_dir=index_dir, shard_dir=shard_dir, force=force, quiet=quiet,
                       device=device)
    if json_out:
        emit_json(res.to_json(name))
        return
    m = res.manifest
    start, end = m["passages"]
    if res.status == "up-to-date":
        echo(f"shard {m['shard']}-of-{m['of']} of index '{name}' is already there ({end - start} passages, "
             f"{m['rows']} vectors) at {res.folder}; use --force to encode it again")
        return
    echo(f"{res.status} shard {m['shard']}-of-{m['of']} of index '{name}' at {res.folder}: passages "
         f"{start}..{end - 1} of {m['corpus']['passages']}, {m['rows']} vectors, {m['passages_per_second']} passages/s")


def _verify(name: str, index_dir: Optional[Path], json_out: bool) -> None:
    from odqa.api.indexes import verify_index
    rep = verify_index(name, index_dir)
    if json_out:
        emit_json(rep.to_json())
    else:
        for problem in rep.problems:
            echo(f"  {problem}")
        echo(f"index '{name}': {rep.summary()}")
    if rep.problems:
        raise IndexCorrupt(f"index '{name}': {len(rep.problems)} of {rep.files} files failed the check; "
                           f"rebuild with `{rep.rebuild}`")
