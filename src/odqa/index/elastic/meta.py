"""The odqa manifest of an Elasticsearch index: stored in its mapping's `_meta.odqa`, read back, and
shown with where it lives (the URL is never stored in `_meta`)."""

from __future__ import annotations

from odqa.index.elastic.client import ESClient

BACKEND = "elasticsearch"


def read_meta(client: ESClient, index: str) -> dict | None:
    body = client.call(f"read the mapping of '{index}'", client.es.indices.get_mapping, index=index).body
    mappings = (body.get(index) or next(iter(body.values()), {})).get("mappings", {})
    meta = (mappings.get("_meta") or {}).get("odqa")
    return meta if isinstance(meta, dict) and meta.get("status") != "building" else None


def located(manifest: dict, url: str, index: str | None = None) -> dict:
    """The manifest as odqa shows it: `_meta.odqa` plus where it was read (the URL is never stored in _meta)."""
    where = {**manifest.get(BACKEND, {}), "url": url}
    if index:
        where["index"] = index
    return {**manifest, BACKEND: where}


def write_meta(client: ESClient, index: str, manifest: dict) -> None:
    client.call(f"store the manifest in '{index}'", client.es.indices.put_mapping, index=index,
                meta={"odqa": manifest})
