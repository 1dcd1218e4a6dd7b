"""`odqa mcp`: an MCP server (tools search, ask, list_indexes) over stdio or HTTP on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.api import PipelineConfig
from odqa.cli.common import IndexDirOpt
from odqa.cli.pipeline_options import PIPELINE, pipeline_options


@pipeline_options()
def mcp(
    index: Optional[List[str]] = typer.Option(None, "--index", "-i", help="Index served (repeat for several; the "
                                              "first is the default). None: every index of the index folder."),
    transport: str = typer.Option("stdio", "--transport", help="stdio (the client starts the server) | http "
                                  "(streamable HTTP at http://127.0.0.1:PORT/mcp)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="HTTP port, on 127.0.0.1 only."),
    pipeline: PipelineConfig = PIPELINE,
    index_dir: Optional[Path] = IndexDirOpt,
) -> None:
    """Serve search and question answering to MCP clients (chat applications, IDEs): tools search, ask, list_indexes.

    Example: odqa mcp --index demo                      (stdio)

    Example: odqa mcp --index demo --transport http --port 8765

    Needs the mcp extra: pip install "odqa[mcp]".
    """
    from odqa.integrations.catalog import Catalog
    from odqa.integrations.mcp import serve
    serve(Catalog(pipeline, index or [], index_dir), transport, port)
