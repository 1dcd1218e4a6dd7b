"""Talking to Elasticsearch: connection settings, one-line errors; retries are the client's own.

Connection settings come from flags or the environment (ODQA_ES_URL, ODQA_ES_API_KEY,
ODQA_ES_USER, ODQA_ES_PASSWORD, ODQA_ES_CA, ODQA_ES_VERIFY). Secrets live only in memory:
`ESConnection.public()` is all that is ever printed or written. The `elasticsearch`
package is imported here, lazily, so odqa works without the optional extra.

Requests answered 429/5xx, timed out or dropped are retried by the client itself (`max_retries`,
`retry_on_status`, `retry_on_timeout`); bulk loads retry rejected items with backoff through
`elasticsearch.helpers.streaming_bulk` (`odqa.index.elastic.build`).
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from odqa.errors import OdqaError
from odqa.settings import env

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 60.0                     # the longest wait between two bulk retries (seconds)


def es_module():
    try:
        import elasticsearch
    except ImportError:
        raise OdqaError("the Elasticsearch backend needs the elasticsearch client: "
                        "pip install 'odqa[elasticsearch]'") from None
    return elasticsearch


def warn(msg: str) -> None:
    log.warning(msg)


def _one_line(s: Any, limit: int = 300) -> str:
    s = re.sub(r"\s+", " ", str(s)).strip()
    return s if len(s) <= limit else s[:limit - 1] + "…"


@dataclass
class ESConnection:
    url: str
    api_key: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = 60.0
    node_class: Any = field(default=None, repr=False)  # a transport node class; tests pass a fake one

    @classmethod
    def resolve(cls, url: str | None = None, api_key: str | None = None, user: str | None = None,
                password: str | None = None, ca_certs: str | None = None, verify: bool | None = None,
                **kw) -> "ESConnection":
        """Flags first, then the environment (`odqa.settings`). Credentials inside the URL are moved out of it."""
        e = env()
        url = url or e.es_url
        if not url:
            raise OdqaError("no Elasticsearch URL: pass `es_url` or set ODQA_ES_URL")
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OdqaError(f"invalid Elasticsearch URL '{_redact(url)}': expected http(s)://HOST:PORT")
        if parts.username:
            user = user or parts.username
            password = password or parts.password
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc += f":{parts.port}" if parts.port else ""
        clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        api_key = api_key or e.es_api_key or None
        user = user or e.es_user or None
        password = password or e.es_password or None
        if user and not password:
            raise OdqaError("Elasticsearch user given without a password: set ODQA_ES_PASSWORD")
        ca_certs = ca_certs or e.es_ca or None
        if ca_certs and not Path(ca_certs).is_file():
            raise OdqaError(f"{ca_certs}: CA file not found (`es_ca` / ODQA_ES_CA)")
        if verify is None:
            verify = e.es_verify is not False
        return cls(clean, api_key, user, password, ca_certs, verify, **kw)

    def public(self) -> dict:
        """What may be printed or written to a manifest: no credentials."""
        return {"url": self.url, "verify_certs": self.verify_certs, "ca_certs": self.ca_certs}

    def auth_kind(self) -> str:
        return "api key" if self.api_key else "basic auth" if self.user else "no credentials"

    def client(self, retries: int = 0):
        """An `elasticsearch.Elasticsearch` that retries 429/5xx answers, timeouts and dropped connections
        `retries` times."""
        es = es_module()
        kw: dict = {"request_timeout": self.timeout, "max_retries": retries, "retry_on_status": tuple(RETRY_STATUS),
                    "retry_on_timeout": True, "verify_certs": self.verify_certs}
        if self.api_key:
            kw["api_key"] = self.api_key
        elif self.user:
            kw["basic_auth"] = (self.user, self.password or "")
        if self.ca_certs:
            kw["ca_certs"] = self.ca_certs
        if not self.verify_certs:
            kw["ssl_show_warn"] = False
            if self.url.startswith("https"):
                warn(f"TLS certificate verification is off for {self.url}")
        if self.node_class is not None:
            kw["node_class"] = self.node_class
        return es.Elasticsearch(self.url, **kw)


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _body_reason(body, fallback: Any = "") -> str:
    """The most useful part of an Elasticsearch error body, on one line."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        cause = (err.get("root_cause") or [err])[0]
        return _one_line(f"{cause.get('type', err.get('type'))}: {cause.get('reason', err.get('reason'))}")
    if isinstance(body, dict) and body.get("error"):
        return _one_line(body["error"])
    return _one_line(fallback)


def _reason(e) -> str:
    return _body_reason(getattr(e, "body", None), getattr(e, "message", None) or e)


def _connection_reason(e) -> str:
    text = _one_line(getattr(e, "message", "") or e)
    for needle, short in (("refused", "connection refused"), ("Name or service not known", "unknown host"),
                          ("nodename nor servname", "unknown host"), ("Temporary failure in name", "unknown host"),
                          ("timed out", "timed out"), ("No route to host", "no route to host")):
        if needle in text:
            return short
    return text


class ESClient:
    """An Elasticsearch client that speaks odqa's errors; the client retries what is worth retrying.

    `retries`: how often a request answered 429/5xx, timed out or dropped is sent again (and a bulk item
    rejected so); `backoff`: the first wait between bulk retries, doubled each time up to MAX_BACKOFF."""

    def __init__(self, conn: ESConnection, retries: int = 5, backoff: float = 1.0):
        self.conn, self.url = conn, conn.url
        self.backoff = backoff
        self._client = conn.client()
        self.retries = retries
        self._version: str | None = None

    @property
    def retries(self) -> int:
        return self._retries

    @retries.setter
    def retries(self, n: int) -> None:
        self._retries = n
        self.es = self._client.options(max_retries=n)

    def bulk_client(self):
        """The client for `streaming_bulk`: connections and timeouts retried here, 429/5xx answers by the helper
        (with backoff, and only the items rejected)."""
        return self.es.options(retry_on_status=())

    # ----------------------------------------------------------- errors
    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn client exceptions into one-line OdqaErrors naming the URL and what failed."""
        es = es_module()
        try:
            yield
        except es.AuthenticationException:
            problem = ("rejected the credentials (HTTP 401, authentication failed, "
                       f"{self.conn.auth_kind()})" if self.conn.api_key or self.conn.user else
                       "requires authentication (HTTP 401) and no credentials were given")
            raise OdqaError(f"Elasticsearch at {self.url} {problem}: set ODQA_ES_API_KEY or "
                            f"ODQA_ES_USER/ODQA_ES_PASSWORD") from None
        except es.AuthorizationException as e:
            text = _reason(e)
            raise RequestFailed(f"Elasticsearch at {self.url}: authenticated, but not allowed to {what} "
                                f"(HTTP 403, {text})", 403, text) from None
        except es.ApiError as e:
            text = _reason(e)
            if e.meta.status == 400 and ("media_type_header_exception" in text or "compatible-with" in text):
                from elasticsearch import __versionstr__ as client_version
                raise OdqaError(f"the elasticsearch client {client_version} is newer than the server at "
                                f"{self.url}: install the client of the server's major version, e.g. "
                                f"pip install 'elasticsearch>=8.16,<9' for an 8.x server") from None
            raise RequestFailed(f"Elasticsearch at {self.url} failed to {what}: HTTP {e.meta.status} {text}",
                                e.meta.status, text) from None
        except es.SSLError as e:
            raise OdqaError(f"TLS error talking to Elasticsearch at {self.url} ({_connection_reason(e)}): "
                            f"give the cluster's CA file with `es_ca` or ODQA_ES_CA") from None
        except es.ConnectionTimeout:
            raise OdqaError(f"Elasticsearch at {self.url} did not answer within {self.conn.timeout:g}s "
                            f"while trying to {what}") from None
        except es.ConnectionError as e:
            raise OdqaError(f"cannot reach Elasticsearch at {self.url} ({_connection_reason(e)}): "
                            f"check `es_url` / ODQA_ES_URL and that the cluster is running") from None

    def call(self, what: str, fn: Callable, *args, **kwargs):
        with self.errors(what):
            return fn(*args, **kwargs)

    # ----------------------------------------------------------- cluster
    def version(self) -> str:
        if self._version is None:
            info = self.call("answer a ping", self.es.info)
            self._version = str(info["version"]["number"])
            if int(self._version.split(".")[0]) < 8:
                raise OdqaError(f"Elasticsearch at {self.url} is version {self._version}: odqa needs 8.0 or newer "
                                f"(8.4 for dense kNN search)")
        return self._version

    def has_nori(self) -> bool:
        """Whether the analysis-nori plugin is installed (asks `_analyze` for a nori tokenizer)."""
        es = es_module()
        with self.errors("check for the nori plugin"):
            try:
                self.es.indices.analyze(tokenizer={"type": "nori_tokenizer"}, text="한국어 형태소")
            except es.BadRequestError as e:
                if "nori" in _reason(e):
                    return False
                raise
            except es.AuthorizationException:
                return True  # may not call _analyze: creating the index will say if nori is missing
        return True

    def license_type(self) -> str | None:
        """The cluster's license (basic, trial, enterprise, ...); None when it cannot be read (no privilege,
        serverless)."""
        try:
            return str(self.call("read the license", self.es.license.get)["license"]["type"])
        except (OdqaError, KeyError, TypeError):
            return None

    def alias_targets(self, alias: str) -> list[str]:
        """Concrete indexes behind `alias` ([] when there is no such alias)."""
        es = es_module()
        with self.errors(f"read alias '{alias}'"):
            try:
                return sorted(self.es.indices.get_alias(name=alias).body)
            except es.NotFoundError:
                return []

    def msearch(self, index: str, bodies: list[dict]) -> list[dict]:
        """One `_msearch` round trip; each response's error (if any) becomes an OdqaError."""
        searches: list[dict] = []
        for b in bodies:
            searches += [{}, b]
        try:
            resp = self.call(f"search index '{index}'", self.es.msearch, index=index, searches=searches)
        except RequestFailed as e:
            if e.status not in RETRY_STATUS:
                raise
            raise OdqaError(f"Elasticsearch at {self.url} kept failing searches of '{index}' after {self.retries} "
                            f"retries (last: HTTP {e.status} {e.reason})") from None
        out = []
        for r in resp["responses"]:
            if "error" in r:
                raise SearchFailed(self.url, index, r.get("status", 0), _body_reason(r))
            out.append(r)
        return out

    def scan(self, index: str, query: dict, source, size: int = 1000) -> Iterator[dict]:
        """Every matching document, in `id` order (search_after paging)."""
        after = None
        while True:
            body = {"query": query, "size": size, "sort": [{"id": "asc"}], "_source": source,
                    "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = self.msearch(index, [body])[0]["hits"]["hits"]
            yield from hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]


class RequestFailed(OdqaError):
    """Elasticsearch answered with an error status (`status`, `reason`: the error body on one line)."""

    def __init__(self, message: str, status: int, reason: str):
        super().__init__(message)
        self.status, self.reason = status, reason


class SearchFailed(RequestFailed):
    """One search of an `_msearch` failed (the other searches of the request may have succeeded)."""

    def __init__(self, url: str, index: str, status: int, reason: str):
        super().__init__(f"Elasticsearch at {url} failed to search index '{index}': HTTP {status} {reason}",
                         status, reason)
