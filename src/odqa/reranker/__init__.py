"""The reranking stage: a cross-encoder over (question, passage) pairs between retrieval and reading
(`model.py`), and its training task on the shared loop (`task.py`)."""
