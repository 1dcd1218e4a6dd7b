"""odqa as an MCP server (the official `mcp` SDK): tools `search`, `ask` and `list_indexes`, typed inputs and
outputs, over stdio or streamable HTTP on 127.0.0.1. Needs the `mcp` extra: pip install "odqa[mcp]".

    odqa mcp --index demo                        # stdio, for a client that starts the server itself
    odqa mcp --index demo --transport http --port 8765    # http://127.0.0.1:8765/mcp

    server = make_server(Catalog(PipelineConfig(), ["demo"]))   # the same in Python (an MCPServer)

A failing call (an unknown index, an empty question) is a tool error whose text names the argument.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Optional, TypeVar

from odqa.integrations.extras import require

require("mcp.server.mcpserver", "mcp")

from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ToolError  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from odqa.api import OdqaError, QAResult, __version__, hit_record  # noqa: E402
from odqa.integrations.catalog import Catalog  # noqa: E402
from odqa.integrations.loading import in_mode  # noqa: E402

HOST = "127.0.0.1"           # loopback only: the server has no authentication
PATH = "/mcp"
TRANSPORTS = ("stdio", "http")
T = TypeVar("T")
Filters = Annotated[Optional[list[str]], Field(max_length=32, description='Metadata filters the passages must all '
                                               'match, e.g. ["source=wiki", "year>=2000"] (default: the server\'s)')]


class PassageOut(BaseModel):
    id: str = Field(description="Passage id, as in the corpus")
    title: str
    text: str
    score: float = Field(description="Retrieval score (BM25, cosine or fused)")
    rank: int = Field(description="1 = the best passage")
    retriever: str = Field(description="The stage that ranked it: sparse | dense | hybrid | rerank")
    doc_id: str = Field(description="The document the passage was cut from ('' when none)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The corpus's metadata fields of the passage")


class SearchOut(BaseModel):
    index: str
    mode: str = Field(description="The retrieval mode used: sparse | dense | hybrid")
    passages: list[PassageOut] = Field(description="Best first")


class SpanOut(BaseModel):
    text: str
    probability: float
    passage_id: str
    start: int = Field(description="Character offset of the span in its passage's text")
    end: int = Field(description="End offset, exclusive")


class AskOut(BaseModel):
    question: str
    index: str
    answer: Optional[str] = Field(description="The best span; null when no passage was found")
    probability: float
    abstained: bool = Field(description="True when the probability is below the server's min_probability")
    start: Optional[int] = Field(None, description="Offsets of the answer in the evidence text")
    end: Optional[int] = None
    evidence: Optional[PassageOut] = Field(None, description="The passage the answer was read from")
    alternatives: list[SpanOut] = Field(default_factory=list, description="Other spans, best first")


class IndexesOut(BaseModel):
    indexes: list[str]
    default: Optional[str] = Field(description="The index used when a call names none")


def _tool_errors(fn: Callable[[], T]) -> T:
    """odqa's one-line errors as MCP tool errors (the client sees the message)."""
    try:
        return fn()
    except OdqaError as e:
        raise ToolError(str(e)) from None


def ask_out(result: QAResult, index: str) -> AskOut:
    best = result.answer
    hit = next((h for h in result.hits if best is not None and h.passage.id == best.passage_id), None)
    return AskOut(question=result.question, index=index, answer=best.text if best else None,
                  probability=best.probability if best else 0.0, abstained=result.abstained,
                  start=best.start if best else None, end=best.end if best else None,
                  evidence=PassageOut(**hit_record(hit)) if hit is not None else None,
                  alternatives=[SpanOut(text=a.text, probability=a.probability, passage_id=a.passage_id, start=a.start,
                                        end=a.end) for a in result.answers[1:]])


def make_server(catalog: Catalog) -> MCPServer:
    """An MCPServer answering from the catalog's indexes (run it with `serve`, or connect a client in-process)."""
    server = MCPServer("odqa", version=__version__, log_level="WARNING",
                       instructions="Korean open-domain question answering over local indexes: `search` finds "
                                    "passages, `ask` answers with a text span and its evidence passage.")

    @server.tool(description="The indexes this server answers from, and the default one.")
    def list_indexes() -> IndexesOut:
        return _tool_errors(lambda: IndexesOut(indexes=catalog.names(), default=catalog.default()))

    @server.tool(description="Passages of an index for a Korean query, best first.")
    def search(query: Annotated[str, Field(description="The query, in Korean")],
               index: Annotated[Optional[str], Field(description="Index name (default: the server's)")] = None,
               k: Annotated[int, Field(ge=1, le=1000, description="Passages returned")] = 5,
               mode: Annotated[Optional[str], Field(description="auto | sparse | dense | hybrid")] = None,
               filters: Filters = None) -> SearchOut:
        def run() -> SearchOut:
            pipe = in_mode(catalog.pipeline(index), mode)
            hits = pipe.passages_to_read([query], k, filters)[0]
            return SearchOut(index=pipe.index.name, mode=pipe.mode, passages=[PassageOut(**hit_record(h)) for h in hits])
        return _tool_errors(run)

    @server.tool(description="Answer a Korean question from an index: a text span, its probability and the "
                             "passage it was read from.")
    def ask(question: Annotated[str, Field(description="The question, in Korean")],
            index: Annotated[Optional[str], Field(description="Index name (default: the server's)")] = None,
            k: Annotated[Optional[int], Field(ge=1, le=100, description="Passages read (default: the server's)")] = None,
            filters: Filters = None) -> AskOut:
        def run() -> AskOut:
            pipe = catalog.pipeline(index)
            return ask_out(pipe.ask(question, k, filters=filters), pipe.index.name)
        return _tool_errors(run)

    return server


def serve(catalog: Catalog, transport: str = "stdio", port: int = 8765) -> None:
    """Load the catalog's named indexes, then serve until stopped: stdio, or streamable HTTP at
    http://127.0.0.1:PORT/mcp."""
    if transport not in TRANSPORTS:
        raise OdqaError(f"`transport` must be one of {', '.join(TRANSPORTS)}, got '{transport}'")
    if not 0 < port < 65536:
        raise OdqaError(f"`port` must be between 1 and 65535, got {port}")
    catalog.load()
    server = make_server(catalog)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=HOST, port=port, streamable_http_path=PATH)
