"""odqa: Korean open-domain question answering toolkit.

The public API is `odqa.api`, re-exported here: `odqa.Pipeline.from_index(name).ask(question)`,
`odqa.build_index`, `odqa.load_index`, `odqa.evaluate_retrieval`, `odqa.evaluate_answers`,
`odqa.predict`, `odqa.train_reader`, `odqa.train_retriever`, `odqa.train_re`, `odqa.pretrain`.
Names load lazily, so `import odqa` stays cheap.
"""

import importlib

from odqa.version import __version__  # noqa: F401  (re-exported)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    api = importlib.import_module("odqa.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'odqa' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(importlib.import_module("odqa.api").__all__))
