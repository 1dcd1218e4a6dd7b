"""Metadata filters, applied inside the search: k hits come back whenever k passages match."""

import json

import numpy as np
import pytest

import odqa
from odqa.api.config import PipelineConfig, RetrieverSettings
from odqa.errors import OdqaError
from odqa.retrieval.filters import FilterError, MetadataTable, parse_filters
from odqa.types import Passage

SOURCES = ("wiki", "news", "blog", "paper")


def corpus_rows(n=80):
    """Passages that all share the words 산 and 높이, with metadata cycling over four sources, years and dates."""
    return [{"id": f"p{i:03d}", "title": f"산 {i}", "text": f"산 {i}번의 높이는 {1000 + i} 미터이다. 산 높이 기록.",
             "source": SOURCES[i % 4], "year": 1990 + i % 30, "date": f"20{10 + i % 14:02d}-0{1 + i % 9}-15",
             "tags": ["a", "b"] if i % 5 == 0 else ["c"]} for i in range(n)]


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("filters")
    path = root / "corpus.jsonl"
    others = [{"id": f"s{i:02d}", "text": f"바다 {i}번의 깊이는 {i} 미터이다."} for i in range(20)]   # no metadata
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus_rows() + others),
                    encoding="utf-8")
    odqa.build_index(path, "f", None, ["dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=64"],
                     index_dir=root, quiet=True)
    return root


def test_parse_and_match():
    f = parse_filters(["source=wiki", "year>=2000", "date<2024-01-01", "lang in [ko, 'en']"])
    assert [c.op for c in f.conditions] == ["=", ">=", "<", "in"]
    assert f.matches({"source": "wiki", "year": 2001, "date": "2023-12-31", "lang": "en"})
    assert not f.matches({"source": "wiki", "year": 1999, "date": "2023-12-31", "lang": "en"})
    assert not f.matches({"source": "wiki", "year": 2001, "date": "2024-01-01T08:00", "lang": "en"})
    assert parse_filters("year=2000").matches({"year": "2000"}) and parse_filters("year=2000").matches({"year": 2000})
    assert parse_filters("date<=2024-01-01").matches({"date": "2024-01-01T23:59"})     # the whole day
    assert parse_filters("tag=b").matches({"tag": ["a", "b"]})
    assert parse_filters("kind!=draft").matches({}) and not parse_filters("kind!=draft").matches({"kind": "draft"})
    assert parse_filters({"source": "wiki", "lang": ["ko", "en"]}).texts() == ["source=wiki", "lang in ['ko', 'en']"]


@pytest.mark.parametrize("bad", ["source", "year>=", "year>=abc", "lang in ko", "lang in []", "=wiki", "year=>2000",
                                 ""])
def test_a_malformed_filter_is_one_line_naming_it(bad):
    with pytest.raises(FilterError) as e:
        parse_filters([bad])
    assert "\n" not in str(e.value) and (repr(bad) in str(e.value) or f"'{bad}'" in str(e.value))
    with pytest.raises(OdqaError, match="filter"):
        RetrieverSettings(filters=[bad])


def test_an_unknown_field_names_the_known_ones():
    table = MetadataTable([Passage("a", "", "x", metadata={"source": "wiki"})])
    with pytest.raises(FilterError, match=r"filter 'lang=ko': no passage has the field 'lang' \(fields: source\)"):
        table.rows(parse_filters("lang=ko"))


def _matching(flt):
    f = parse_filters(flt)
    return {r["id"] for r in corpus_rows() if f.matches(r)}


@pytest.mark.parametrize("mode", ["sparse", "dense", "hybrid"])
@pytest.mark.parametrize("flt", [["source=wiki"], ["source in [news, paper]", "year>=2005"], ["date<2012-01-01"],
                                 ["tags=a"], ["year>=2018", "source=blog"]])
def test_k_hits_whenever_k_passages_match(root, mode, flt):
    r = odqa.Retriever.from_index("f", RetrieverSettings(mode=mode), root, "cpu")
    allowed = _matching(flt)
    assert allowed, flt
    for k in (1, 5, len(allowed), len(allowed) + 3):
        hits = r.retrieve("산의 높이", k, filters=flt)
        ids = [h.passage.id for h in hits]
        assert len(ids) == min(k, len(allowed)) and set(ids) <= allowed, (mode, flt, k)
        assert len(set(ids)) == len(ids)


def test_a_filter_keeps_the_unfiltered_order_of_what_it_allows(root):
    r = odqa.Retriever.from_index("f", RetrieverSettings(mode="sparse"), root, "cpu")
    everything = [h.passage.id for h in r.retrieve("산 7번의 높이", 80)]
    allowed = _matching(["source=news"])
    assert [h.passage.id for h in r.retrieve("산 7번의 높이", 80, filters="source=news")] == \
        [p for p in everything if p in allowed]


def test_filters_from_the_config_the_pipeline_and_per_call(root):
    cfg = PipelineConfig.from_flat(index="f", index_dir=root, mode="sparse", reader="none", filters=["source=wiki"])
    assert cfg.retriever.filters == ["source=wiki"]
    p = odqa.Pipeline.from_config(cfg, lazy_reader=True)
    assert {h.passage.metadata["source"] for h in p.retrieve("산의 높이", 10)} == {"wiki"}
    assert {h.passage.metadata["source"] for h in p.retrieve("산의 높이", 10, filters=["source=news"])} == {"news"}
    with pytest.raises(OdqaError, match="filter 'year>>1'"):
        p.retrieve("산의 높이", 3, filters=["year>>1"])


def test_faiss_search_over_an_approximate_index_still_finds_k(root):
    import faiss

    from odqa.retrieval.dense import faiss_search
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype("float32")
    index = faiss.IndexHNSWFlat(16, 4, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 4
    index.add(vectors)
    allowed = np.arange(3, 500, 97, dtype=np.int64)          # 6 vectors far apart in the graph
    scores, ids = faiss_search(index, vectors[:2], 6, allowed)
    assert ids.shape == (2, 6) and all(set(row) == set(allowed) for row in ids.tolist())
    best = (vectors[:2] @ vectors[allowed].T).max(1)
    assert np.allclose(scores[:, 0], best, atol=1e-5)


def test_the_server_takes_filters_in_its_request_bodies(root):
    from fastapi.testclient import TestClient

    from odqa.server.app import create_app
    from odqa.server.settings import ServeConfig
    cfg = ServeConfig(indexes=["f"], pipeline=PipelineConfig.from_flat(reader="none", mode="sparse"))
    pipe = odqa.Pipeline.from_index("f", reader="none", mode="sparse", index_dir=root, lazy_reader=True)
    with TestClient(create_app({"f": pipe}, cfg)) as client:
        r = client.post("/v1/retrieve", json={"question": "산의 높이", "k": 4, "filters": ["source=paper"]})
        assert r.status_code == 200 and len(r.json()["passages"]) == 4
        assert all(p["id"] in _matching(["source=paper"]) for p in r.json()["passages"])
        bad = client.post("/v1/retrieve", json={"question": "산의 높이", "filters": ["year>=x"]})
        assert bad.status_code == 422 and "filter 'year>=x'" in bad.json()["error"]
