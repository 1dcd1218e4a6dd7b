"""What odqa sends to Elasticsearch: index settings and mappings, documents, query bodies.

Pure functions over plain dicts (no client, no network) so the exact bodies are testable.
Passages are documents whose `_id` is the passage id; `content` is the analysed text
(`title\\ntext` when titles are included, as in the local index), `aliases` lists the ids
of exact duplicates merged into the passage, `vector` is the dense embedding.
"""

from __future__ import annotations

import re
from typing import Sequence

from odqa.errors import OdqaError
from odqa.text.normalize import normalize

ANALYZER = "odqa_korean"
SIMILARITY = "odqa_bm25"
SOURCE_FIELDS = ["id", "title", "text", "doc_id", "metadata"]
DECOMPOUND_MODES = ("none", "discard", "mixed")
FUSIONS = ("auto", "server", "client")
# Part-of-speech tags of nori (mecab-ko-dic), as accepted by nori_part_of_speech.stoptags.
# UNKNOWN is left out on purpose: unknown words are always kept.
NORI_TAGS = ("E", "IC", "J", "MAG", "MAJ", "MM", "NA", "NNB", "NNBC", "NNG", "NNP", "NP", "NR", "SC", "SE", "SF",
             "SH", "SL", "SN", "SP", "SSC", "SSO", "SY", "UNA", "VA", "VCN", "VCP", "VSV", "VV", "VX", "XPN", "XR",
             "XSA", "XSN", "XSV")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or "") or len(name.encode()) > 200:
        raise OdqaError(f"invalid Elasticsearch index name '{name}': use lowercase letters, digits, '-', '_' or '.', "
                        f"starting with a letter or digit")
    return name


def stoptags(keep: Sequence[str]) -> list[str]:
    """nori tags to drop so that nori keeps the same POS prefixes as the local analyzer (`analyzer.pos`;
    empty keeps every tag, as locally)."""
    return [t for t in NORI_TAGS if keep and not any(t.startswith(p) for p in keep)]


def user_rules(text: str) -> list[str]:
    """Lines of a nori user dictionary (`word [part part ...]`), comments and blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def analysis(nori: bool, decompound_mode: str = "mixed", keep_pos: Sequence[str] = (),
             rules: list[str] | None = None, dictionary_path: str = "") -> dict:
    """`settings.analysis`: nori tokenizer + part-of-speech stop filter + lowercase, or the built-in cjk analyzer."""
    if not nori:
        return {"analyzer": {ANALYZER: {"type": "cjk"}}}
    if decompound_mode not in DECOMPOUND_MODES:
        raise OdqaError(f"unknown nori decompound mode '{decompound_mode}' (choose from {', '.join(DECOMPOUND_MODES)})")
    if rules and dictionary_path:
        raise OdqaError("give elastic.user_dictionary (a local file) or elastic.user_dictionary_path "
                        "(a file on the nodes), not both")
    tokenizer: dict = {"type": "nori_tokenizer", "decompound_mode": decompound_mode, "discard_punctuation": True}
    if rules:
        tokenizer["user_dictionary_rules"] = list(rules)
    elif dictionary_path:
        tokenizer["user_dictionary"] = dictionary_path
    filters = ["nori_readingform", "lowercase"]
    out: dict = {"tokenizer": {"odqa_nori": tokenizer},
                 "analyzer": {ANALYZER: {"type": "custom", "tokenizer": "odqa_nori", "filter": filters}}}
    stop = stoptags(keep_pos)
    if stop:  # keep everything: no filter (an empty stoptags list can read as unset, i.e. nori's default tags)
        out["filter"] = {"odqa_pos": {"type": "nori_part_of_speech", "stoptags": stop}}
        filters.insert(0, "odqa_pos")
    return out


def index_body(analysis_settings: dict, k1: float, b: float, dims: int | None = None, shards: int = 1,
               replicas: int = 1, meta: dict | None = None) -> dict:
    """`settings` + `mappings` for `PUT /INDEX` (refresh is off during the bulk load, turned on after)."""
    props: dict = {
        "id": {"type": "keyword"},
        "doc_id": {"type": "keyword"},
        "title": {"type": "text", "index": False},
        "text": {"type": "text", "index": False},
        "aliases": {"type": "keyword"},
        "content": {"type": "text", "analyzer": ANALYZER, "similarity": SIMILARITY},
        # the passage's metadata, for filters: text as keyword (exact values; ISO dates compare as text)
        "metadata": {"type": "object", "dynamic": True},
    }
    if dims:
        props["vector"] = {"type": "dense_vector", "dims": int(dims), "index": True, "similarity": "cosine"}
    settings = {"number_of_shards": shards, "number_of_replicas": replicas, "refresh_interval": "-1",
                "similarity": {SIMILARITY: {"type": "BM25", "k1": float(k1), "b": float(b)}},
                "analysis": analysis_settings}
    mappings = {"dynamic": "strict", "date_detection": False, "numeric_detection": False,
                "dynamic_templates": [{"metadata_text": {"path_match": "metadata.*", "match_mapping_type": "string",
                                                         "mapping": {"type": "keyword"}}}],
                "_source": {"excludes": ["content", "vector"]}, "properties": props}
    if meta is not None:
        mappings["_meta"] = meta
    return {"settings": settings, "mappings": mappings}


def document(p, include_title: bool, aliases: Sequence[str] = (), vector=None) -> dict:
    from odqa.retrieval.sparse import passage_text
    doc = {"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id,
           "content": normalize(passage_text(p, include_title))}        # matched as the local analyzers read it
    if p.metadata:
        doc["metadata"] = p.metadata
    if aliases:
        doc["aliases"] = list(aliases)
    if vector is not None:
        doc["vector"] = [float(x) for x in vector]
    return doc


def _match(query: str, filters=None) -> dict:
    match = {"match": {"content": {"query": normalize(query)}}}
    clauses = filter_clauses(filters)
    return {"bool": {"must": [match], "filter": clauses}} if clauses else match


def _value(raw: str):
    """A filter value as Elasticsearch compares it: a number as a number, else the text."""
    try:
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    except ValueError:
        return raw


def filter_clauses(filters) -> list[dict]:
    """`odqa.retrieval.filters.Filters` as Elasticsearch filter clauses on `metadata.*` (AND)."""
    out: list[dict] = []
    for c in (filters.conditions if filters else ()):
        name = f"metadata.{c.field}"
        if c.op == "=":
            out.append({"term": {name: _value(c.values[0])}})
        elif c.op == "!=":
            out.append({"bool": {"must_not": [{"term": {name: _value(c.values[0])}}]}})
        elif c.op == "in":
            out.append({"terms": {name: [_value(v) for v in c.values]}})
        else:
            op = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[c.op]
            value = _value(c.values[0])
            if isinstance(value, str) and op in ("lte", "gt"):   # a date covers its whole day/month/second
                value += "\uffff"
            out.append({"range": {name: {op: value}}})
    return out


def _knn(vector, k: int, num_candidates: int, filters=None) -> dict:
    knn = {"field": "vector", "query_vector": [float(x) for x in vector], "k": k,
           "num_candidates": max(k, num_candidates)}
    clauses = filter_clauses(filters)
    if clauses:                       # filtered during the kNN search: k hits whenever k passages match
        knn["filter"] = clauses
    return knn


def sparse_query(query: str, k: int, filters=None) -> dict:
    return {"query": _match(query, filters), "size": k, "_source": SOURCE_FIELDS, "track_total_hits": False}


def knn_query(vector, k: int, num_candidates: int, filters=None) -> dict:
    return {"knn": _knn(vector, k, num_candidates, filters), "size": k, "_source": SOURCE_FIELDS,
            "track_total_hits": False}


def rrf_query(query: str, vector, k: int, window: int, rank_constant: int, num_candidates: int, filters=None) -> dict:
    """Hybrid by Elasticsearch's own reciprocal rank fusion (the `rrf` retriever, 8.14+)."""
    window = max(k, window)
    return {"retriever": {"rrf": {"retrievers": [{"standard": {"query": _match(query, filters)}},
                                                 {"knn": _knn(vector, window, num_candidates, filters)}],
                                  "rank_window_size": window, "rank_constant": rank_constant}},
            "size": k, "_source": SOURCE_FIELDS, "track_total_hits": False}


def at_least(version: str, major: int, minor: int) -> bool:
    """Whether server `version` ("8.15.3") is `major.minor` or newer (False when unparseable)."""
    try:
        have = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    return have >= (major, minor)


def server_rrf_supported(version: str) -> bool:
    """The rrf retriever is generally available from Elasticsearch 8.16 (technical preview in 8.14-8.15)."""
    return at_least(version, 8, 16)


def rrf_licensed(license_type: str | None) -> bool:
    """The rrf retriever needs an enterprise (or trial) license; an unknown one (None) is tried, with a fallback."""
    return license_type in (None, "enterprise", "trial")
