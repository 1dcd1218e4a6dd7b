"""`odqa serve`: the HTTP API and web page (settings from flags; the server lives in odqa.server)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.api import PipelineConfig
from odqa.cli.common import IndexDirOpt
from odqa.cli.pipeline_options import PIPELINE, pipeline_options


@pipeline_options()
def serve(
    index: List[str] = typer.Option(..., "--index", "-i", help="Index to serve (repeat for several; the first is the default)."),
    pipeline: PipelineConfig = PIPELINE,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; any other than loopback needs --api-key or --no-auth."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to bind."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="ODQA_API_KEY",
                                          help="Key every request must send (Authorization: Bearer KEY or X-API-Key)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve a non-loopback address without a key, on purpose."),
    cors_origin: Optional[List[str]] = typer.Option(None, "--cors-origin", help="Origin allowed by CORS (repeatable; default: none)."),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="Micro-batch concurrent /v1/ask requests."),
    max_batch_size: int = typer.Option(16, "--max-batch-size", min=1, help="Questions per batch at most."),
    max_batch_windows: int = typer.Option(64, "--max-batch-windows", min=1, help="Reader windows per reading batch: "
                                          "questions are read together until their windows reach it."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", min=0, help="How long a batch waits for more questions."),
    workers: int = typer.Option(2, "--workers", min=1, help="Batches (or retrievals) run at once."),
    max_question_chars: int = typer.Option(1000, "--max-question-chars", min=1, help="Longer questions are refused (422)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per request before it answers 504; a request "
                                  "that would wait longer (estimated from the answers so far) is refused at once (503)."),
    max_queue: int = typer.Option(256, "--max-queue", min=1, help="/v1/ask requests waiting or running at once; "
                                  "past it 503 with Retry-After."),
    index_dir: Optional[Path] = IndexDirOpt,
) -> None:
    """Serve indexes over HTTP: POST /v1/ask, /v1/retrieve, GET /v1/health, /metrics, a web page at /.

    Example: odqa serve --index demo --port 8000   (then open http://127.0.0.1:8000/)
    """
    from odqa.api import check_pipeline
    from odqa.server.run import serve as run
    from odqa.server.settings import ServeConfig
    check_pipeline(pipeline)                          # one line each, before anything loads
    if index_dir:
        pipeline = pipeline.with_overrides(index_dir=index_dir)
    run(ServeConfig(indexes=index, pipeline=pipeline, host=host, port=port, api_key=api_key, no_auth=no_auth,
                    cors_origins=list(cors_origin or []), batching=batching, max_batch_size=max_batch_size,
                    max_batch_windows=max_batch_windows, max_wait_ms=max_wait_ms, workers=workers, max_question_chars=max_question_chars,
                    timeout_s=timeout, max_queue=max_queue))
