"""The HTTP app: `create_app(pipelines, config)` (tests drive it with FastAPI's TestClient, no socket).

    app = create_app({"demo": odqa.Pipeline.from_index("demo")}, ServeConfig(indexes=["demo"]))
    app = create_app(lambda: load_pipelines(config), config)     # loaded in the background at startup

Endpoints: POST /v1/ask, POST /v1/retrieve, GET /v1/health, GET /v1/indexes, GET /metrics (Prometheus),
GET / (the web page), GET /docs (OpenAPI, assets served locally).
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from odqa.api import __version__
from odqa.server.auth import api_key_check
from odqa.server.answering import AskStages
from odqa.server.batching import Overloaded
from odqa.server.errors import ApiError, install_handlers
from odqa.server.metrics import ServerMetrics
from odqa.server.middleware import BodyLimit, CatchAll, Metrics
from odqa.server.schemas import (AskResponse, Error, Health, IndexInfo, IndexList, Passage, RetrieveResponse,
                                 request_models)
from odqa.server.settings import ServeConfig
from odqa.server.state import Served, Source, index_modes

STATIC = Path(str(resources.files("odqa.server") / "static"))
ERRORS = {s: {"model": Error} for s in (400, 401, 404, 413, 422, 503, 504)}


def create_app(pipelines: Source, config: ServeConfig) -> FastAPI:
    served, metrics = Served(pipelines, config.indexes), ServerMetrics()
    RetrieveRequest, AskRequest = request_models(config.max_question_chars, config.max_k, config.max_top)
    pool: dict[str, ThreadPoolExecutor] = {}

    stages = AskStages(served, config, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        pool["workers"] = ThreadPoolExecutor(config.workers, thread_name_prefix="odqa-serve")
        stages.set_executor(pool["workers"])
        served.start()
        yield
        pool.pop("workers").shutdown(wait=True)

    async def in_time(work):
        try:
            return await asyncio.wait_for(work, config.timeout_s)
        except Overloaded as e:
            raise ApiError(503, f"the server is at capacity ({e}): retry after {e.retry_after} s",
                           {"Retry-After": str(e.retry_after)}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {config.timeout_s:g} s (the server is busy): try again "
                                f"later") from None

    app = FastAPI(title="odqa", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  dependencies=[Depends(api_key_check(config.api_key))] if config.api_key else [],
                  description="Korean open-domain question answering: retrieve passages and read answers.")
    install_handlers(app)

    @app.post("/v1/ask", response_model=AskResponse, responses=ERRORS, summary="Answer a question")
    async def ask(req: AskRequest):
        k, top, t0 = req.k or config.k, req.top or config.top, time.perf_counter()
        name, _ = served.get(req.index)
        filters = None if req.filters is None else tuple(req.filters)     # questions batch with their own filters
        (r, p), size, queued = await in_time(stages.answer(name, req.mode or config.mode, k, filters, req.question))
        timings = {"queue": queued, **r.timings, "total": time.perf_counter() - t0}
        return AskResponse.of(r, name, p.mode, top, p.reader_settings["readers"], p.sentence_level, size, timings)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, responses=ERRORS, summary="Retrieve passages")
    async def retrieve(req: RetrieveRequest):
        k, t0 = req.k or config.k, time.perf_counter()
        name, pipe = served.get(req.index)

        def work():
            r = pipe.retrieval.in_mode(req.mode or config.mode)
            return r.mode, r.retrieve_batch([req.question], k, req.filters)[0]
        mode, hits = await in_time(asyncio.get_running_loop().run_in_executor(pool.get("workers"), work))
        total = round(time.perf_counter() - t0, 6)
        return RetrieveResponse(question=req.question, index=name, mode=mode, passages=[Passage.of(h) for h in hits],
                                timings={"retrieve": total, "total": total})

    @app.get("/v1/health", response_model=Health, responses={503: {"model": Health}}, summary="Ready to answer?")
    async def health():
        h = Health(status=served.status, indexes=served.names, error=served.error,
                   load_seconds=None if served.load_seconds is None else round(served.load_seconds, 3))
        return JSONResponse(h.model_dump(), status_code=200 if served.status == "ready" else 503)

    @app.get("/v1/indexes", response_model=IndexList, responses={401: {"model": Error}, 503: {"model": Error}},
             summary="The served indexes")
    async def indexes():
        infos = []
        for name in served.names:
            _, p = served.get(name)
            infos.append(IndexInfo(name=name, mode=p.retrieval.in_mode(config.mode).mode, modes=index_modes(p),
                                   passages=len(p.index.passages),
                                   reader="+".join(p.reader_settings["readers"]) or None))
        return IndexList(default=served.names[0], indexes=infos)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="odqa API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="")

    from swagger_ui_bundle import swagger_ui_path
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(Metrics, metrics=metrics, known_paths={r.path for r in app.routes})
    app.state.served, app.state.stages, app.state.metrics = served, stages, metrics
    return app
