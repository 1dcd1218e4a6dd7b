"""`odqa serve`: the HTTP API and web page over loaded pipelines (FastAPI + uvicorn).

    from odqa.server.app import create_app          # the app, for tests and embedding
    from odqa.server.run import serve               # run it (what `odqa serve` calls)
    from odqa.server.settings import ServeConfig    # every setting

Modules: settings (ServeConfig), schemas (request/response bodies), batching (micro-batching),
state (the served pipelines and their loading), errors, auth (the API key), middleware, metrics, app, run.
"""
