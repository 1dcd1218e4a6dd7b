"""Live updates of an index on Elasticsearch: passages added, replaced and deleted with bulk requests.

Elasticsearch keeps its own segments and global statistics (a deleted document's terms leave its BM25
statistics at the next merge; `compact` is not needed there). The manifest in `_meta.odqa` records the new
passage count and the update. A bulk request is not all or nothing: items already applied when one fails
stay applied, and the error names the failing passage; running the same update again with upsert completes it.
"""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from odqa.errors import OdqaError
from odqa.index.elastic import schema
from odqa.index.elastic.client import ESClient, _body_reason
from odqa.index.elastic.meta import read_meta, write_meta
from odqa.index.incoming import incoming
from odqa.index.manifest import UpdateResult
from odqa.types import Passage


def actions(index: str, added: Sequence[Passage], deleted: Sequence[str], include_title: bool,
            vectors=None) -> Iterator[dict]:
    """The bulk actions of one update: deletions first, then each passage indexed under its id (replacing a
    document of the same id)."""
    for pid in deleted:
        yield {"_op_type": "delete", "_index": index, "_id": pid}
    for i, p in enumerate(added):
        yield {"_op_type": "index", "_index": index, "_id": p.id,
               "_source": schema.document(p, include_title, (), None if vectors is None else vectors[i])}


def existing(client: ESClient, index: str, ids: Sequence[str]) -> set[str]:
    """The ids among `ids` that index `index` has."""
    if not ids:
        return set()
    body = client.call(f"look up ids in '{index}'", client.es.mget, index=index, ids=list(ids), source=False).body
    return {d["_id"] for d in body.get("docs", []) if d.get("found")}


def update(name: str, folder, pointer: dict, add=None, delete: Sequence[str] = (), upsert=None, connection=None):
    from elasticsearch.helpers import streaming_bulk

    from odqa.index.elastic.search import _load_connection
    where = pointer.get("elasticsearch") or {}
    client = ESClient(connection or _load_connection(where))
    alias = where["alias"]
    targets = client.alias_targets(alias)
    if not targets:
        raise OdqaError(f"index '{name}' is alias '{alias}' on Elasticsearch at {client.url}, which does not exist")
    target = targets[0]
    manifest = read_meta(client, target) or {}
    ccfg = manifest.get("corpus") or {}
    include_title = (manifest.get("sparse") or {}).get("include_title", True)
    t0 = time.perf_counter()
    res = UpdateResult("updated", folder, manifest)
    missing = sorted(set(delete) - existing(client, alias, list(delete)))
    if missing:
        raise OdqaError(f"index '{name}': no passage with id '{missing[0]}' on Elasticsearch; nothing was changed")
    added: list[Passage] = []
    for source, replace in ((add, False), (upsert, True)):
        if source is None:
            continue
        passages, _, empty, label = incoming(source, ccfg)
        res.empty_skipped += empty
        there = existing(client, alias, [p.id for p in passages])
        if there and not replace:
            raise OdqaError(f"{label}: passage id '{sorted(there)[0]}' is already in index '{name}': upsert "
                            "replaces it; nothing was changed")
        res.replaced += sorted(there)
        added += passages
    vectors = None
    if manifest.get("dense") and added:
        from odqa.retrieval.dense import DenseEncoder
        from odqa.retrieval.sparse import passage_text
        d = manifest["dense"]
        vectors = DenseEncoder(d["encoder"], d["max_length"], quantize=d.get("quantize", "none")).encode(
            [passage_text(p, include_title) for p in added], "passage")
    deletes = list(dict.fromkeys(delete))
    with client.errors(f"bulk update of '{target}'"):
        for ok, item in streaming_bulk(client.bulk_client(), actions(target, added, deletes, include_title, vectors),
                                       raise_on_error=False, max_retries=client.retries):
            if not ok:
                r = next(iter(item.values()))
                raise OdqaError(f"Elasticsearch at {client.url} rejected passage '{r.get('_id')}' (HTTP "
                                f"{r.get('status')} {_body_reason(r)}); the items before it were applied")
    client.call(f"refresh '{target}'", client.es.indices.refresh, index=target)
    res.added, res.deleted = [p.id for p in added], deletes
    n = int(ccfg.get("passages", 0)) + len(added) - len(res.replaced) - len(deletes)
    manifest = {**manifest, "corpus": {**ccfg, "passages": n}, "updates": int(manifest.get("updates", 0)) + 1}
    write_meta(client, target, manifest)
    res.manifest, res.seconds = manifest, round(time.perf_counter() - t0, 3)
    return res
