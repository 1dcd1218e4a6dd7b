"""Index storage and backends: the manifest, the folder store and its lock, streamed and sharded builds,
the local backend and the Elasticsearch backend, and the registry that builds and loads through them.
Searching is `odqa.retrieval`'s (BM25, dense, fusion); an index hands out its retrievers."""
