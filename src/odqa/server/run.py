"""`serve(config)`: check the settings, then run the app on uvicorn until SIGTERM or Ctrl-C.

The indexes and models load in a background thread once the socket is open (GET /v1/health says
`loading` until they are ready); uvicorn lets in-flight requests finish on SIGTERM, then exits.
"""

from __future__ import annotations

import logging
import signal
import sys

from odqa.api import IndexNotFound, Pipeline, list_indexes
from odqa.server.settings import ServeConfig
from odqa.server.state import index_modes

WARM_UP = "대한민국의 수도는 어디인가?"


def load_pipelines(config: ServeConfig) -> dict[str, Pipeline]:
    """One pipeline per served index, sharing nothing but the settings; every mode's retriever built now,
    and each answers one question before the server says it is ready (the first real one is not slower)."""
    out = {}
    for name in config.indexes:
        p = Pipeline.from_config(config.pipeline.with_overrides(index=name, n_best=config.max_top))
        for mode in index_modes(p):
            p.retrieval.in_mode(mode).retrieve(WARM_UP, 1)
        p.ask(WARM_UP)
        out[name] = p
    return out


def check_indexes(config: ServeConfig) -> None:
    """Every served index exists in the index folder (checked before the server starts)."""
    have = list_indexes(config.index_dir)
    missing = [n for n in config.indexes if n not in have]
    if missing:
        raise IndexNotFound(f"no index '{missing[0]}' in the index folder (have: {', '.join(have) or 'none'}; "
                            f"build one with `odqa index CORPUS --name {missing[0]}`)")


def _server_log() -> None:
    """The server's log on stderr with tracebacks (the CLI's one-line format would drop them)."""
    log = logging.getLogger("odqa.server")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s odqa.server %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(config: ServeConfig) -> None:
    import uvicorn

    from odqa.server.app import create_app
    config.check_bind()
    check_indexes(config)
    _server_log()
    app = create_app(lambda: load_pipelines(config), config)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it found:
    # a no-op one makes that a normal exit (status 0) instead of death by signal
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=30)
