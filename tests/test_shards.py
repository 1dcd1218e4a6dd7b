"""Sharded dense encoding: N shards (by commands, by Ray local mode) merge into the index a single
process builds; shards of another corpus, encoder or setting, missing or damaged ones are refused in one
line naming the shard."""

import json

import numpy as np
import pytest

import odqa
from odqa.errors import IndexCorrupt, OdqaError
from odqa.index.shards import parse_shard, shard_range
from tests.conftest import PASSAGES, QUESTIONS, write_jsonl
from tests.tiny_model import make_tiny_backbone

MORE = [{"id": f"x{i}", "title": f"문서 {i}", "text": f"{t} 그리고 {PASSAGES[i % 5]['text']}"}
        for i, t in enumerate(["세종대왕은 훈민정음을 창제하였다", "김치는 한국의 전통 음식이다",
                               "이순신은 거북선으로 왜군을 물리쳤다", "지리산의 최고봉은 천왕봉이다",
                               "백록담은 한라산 정상에 있다", "한라산은 제주도에 있는 산이다",
                               "질문 답변 문서 무엇 누구 언제 어디 몇"])]
QUERIES = [q["question"] for q in QUESTIONS] + ["한라산 정상", "전통 음식"]


@pytest.fixture
def corpus(tmp_path):
    return write_jsonl(tmp_path / "corpus.jsonl", PASSAGES + MORE)   # 12 passages after the duplicate merges


def sets(tiny, *more):
    # windows of 10 tokens, 4 apart: most passages have several, so windows must stay with their passage
    return ["dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=10", "dense.window_stride=4", *more]


def vectors(root, name):
    import faiss
    folder = root / name / "dense"
    index = faiss.read_index(str(folder / "index.faiss"))
    owners = np.load(folder / "owners.npy") if (folder / "owners.npy").exists() else None
    return index.reconstruct_n(0, index.ntotal), owners


def same_index(root, a, b, questions_file):
    va, oa = vectors(root, a)
    vb, ob = vectors(root, b)
    assert va.shape == vb.shape and np.allclose(va, vb, atol=1e-5)
    assert (oa is None) == (ob is None) and (oa is None or (oa == ob).all())
    ia, ib = odqa.load_index(a, root), odqa.load_index(b, root)
    assert [p.id for p in ia.passages] == [p.id for p in ib.passages]
    for mode in ("dense", "hybrid"):
        ha, hb = ia.retriever(mode).search(QUERIES, 5), ib.retriever(mode).search(QUERIES, 5)
        assert [[h.passage.id for h in x] for x in ha] == [[h.passage.id for h in x] for x in hb]
        ra = odqa.evaluate_retrieval(ia, questions_file, mode=mode, k=5).metrics
        rb = odqa.evaluate_retrieval(ib, questions_file, mode=mode, k=5).metrics
        assert {k: v for k, v in ra.items() if k.startswith("recall")} == \
               {k: v for k, v in rb.items() if k.startswith("recall")}


def test_shard_spec_and_ranges():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/4", "5/4", "2", "a/b", "2-of-4"):
        with pytest.raises(OdqaError, match="`shard`"):
            parse_shard(bad)
    for total in (0, 1, 3, 12, 1001):
        for n in (1, 3, 4, 7):
            ranges = [shard_range(total, i, n) for i in range(1, n + 1)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))          # contiguous, no overlap
            assert max(e - s for s, e in ranges) - min(e - s for s, e in ranges) <= 1


def test_four_shards_by_commands_equal_the_single_process_index(tiny, corpus, questions_file, index_root, cli,
                                                               monkeypatch):
    single = odqa.build_index(corpus, "one", None, sets(tiny), index_dir=index_root, quiet=True)
    done = [odqa.encode_shard(corpus, "four", f"{i}/4", None, sets(tiny), index_dir=index_root, quiet=True)
            for i in (1, 2, 3)]
    code, out, err = cli("index", corpus, "--name", "four", "--index-dir", index_root, "--encoder", tiny,
                         "--set", "dense.max_length=10", "--window-stride", "4", "--shard", "4/4", "--json", "-q")
    assert code == 0 and err == ""
    last = json.loads(out)
    assert last["status"] == "built" and last["shard"] == "4-of-4"
    ranges = [r.manifest["passages"] for r in done] + [last["manifest"]["passages"]]
    assert ranges == [[0, 3], [3, 6], [6, 9], [9, 12]]
    total = sum(r.manifest["rows"] for r in done) + last["manifest"]["rows"]
    assert total == single.manifest["dense"]["vectors"] > 12          # windows, kept with their passage
    folder = index_root / "four.shards" / "4-of-4"
    assert sorted(p.name for p in folder.iterdir()) == ["owners.npy", "shard.json", "vectors.npy"]

    # a finished shard is not encoded again
    import odqa.retrieval.dense as dense
    monkeypatch.setattr(dense.DenseEncoder, "encode_ids", lambda *a, **k: pytest.fail("re-encoded a finished shard"))
    again = odqa.encode_shard(corpus, "four", "2/4", None, sets(tiny), index_dir=index_root, quiet=True)
    assert again.status == "up-to-date" and again.manifest == done[1].manifest

    code, out, err = cli("index", "--name", "four", "--index-dir", index_root, "--encoder", tiny, "--set",
                         "dense.max_length=10", "--window-stride", "4", "--merge", "-q")   # corpus: from the shards
    assert code == 0 and "merged from 4 shards" in out, err
    monkeypatch.undo()
    m = odqa.load_index("four", index_root).manifest
    assert m["dense"]["shards"]["count"] == 4 and m["dense"]["vectors"] == total and m["checksums"]
    assert {k: v for k, v in m["dense"].items() if k not in ("shards", "encode_seconds", "passages_per_second")} == \
           {k: v for k, v in single.manifest["dense"].items() if k not in ("encode_seconds", "passages_per_second")}
    assert odqa.verify_index("four", index_root).problems == []
    same_index(index_root, "one", "four", questions_file)

    # merging again: the index is already complete
    res = odqa.build_index(corpus, "four", None, sets(tiny), index_dir=index_root, quiet=True, shards=True)
    assert res.status == "up-to-date"


def test_mismatched_missing_and_damaged_shards_are_refused_in_one_line(tiny, corpus, tmp_path, index_root, cli):
    for i in range(1, 5):
        odqa.encode_shard(corpus, "s", (i, 4), None, sets(tiny), index_dir=index_root, quiet=True)
    shards = index_root / "s.shards"
    merge = ["index", corpus, "--name", "s", "--index-dir", index_root, "--encoder", tiny, "--set",
             "dense.max_length=10", "--window-stride", "4", "--merge", "-q"]

    def refused(*pattern):
        code, out, err = cli(*merge)
        assert code != 0 and out == "" and len(err.splitlines()) == 1 and err.startswith("odqa: error: "), err
        for p in pattern:
            assert p in err, err
        assert not (index_root / "s").exists()         # nothing built
        return err

    other_corpus = write_jsonl(tmp_path / "other.jsonl", PASSAGES + MORE[::-1])
    odqa.encode_shard(other_corpus, "s", "2/4", None, sets(tiny), index_dir=index_root, quiet=True)
    refused("shard 2-of-4", str(shards / "2-of-4"), "corpus differs (sha256 ")
    odqa.encode_shard(corpus, "s", "2/4", None, sets(tiny), index_dir=index_root, quiet=True)   # redone: not kept

    other = str(make_tiny_backbone(tmp_path / "other-enc", seed=1))
    odqa.encode_shard(corpus, "s", "3/4", None, sets(other), index_dir=index_root, quiet=True)
    refused("shard 3-of-4", "encoder differs", other)
    odqa.encode_shard(corpus, "s", "3/4", None, sets(tiny, "dense.max_length=12"), index_dir=index_root, quiet=True)
    refused("shard 3-of-4", "dense.max_length differs (12 in the shard vs 10 here)")
    odqa.encode_shard(corpus, "s", "3/4", None, sets(tiny), index_dir=index_root, quiet=True)

    odqa.encode_shard(corpus, "s", "1/4", None, sets(tiny, "include_title=false"), index_dir=index_root, quiet=True)
    refused("shard 1-of-4", "include_title differs")
    odqa.encode_shard(corpus, "s", "1/4", None, sets(tiny), index_dir=index_root, quiet=True)

    import shutil
    shutil.move(shards / "4-of-4", tmp_path / "kept")
    refused("shard 4-of-4", "missing", "--shard 4/4")
    shutil.move(tmp_path / "kept", shards / "4-of-4")

    vec = shards / "4-of-4" / "vectors.npy"
    data = bytearray(vec.read_bytes())
    data[-1] ^= 0xFF
    vec.write_bytes(bytes(data))
    err = refused("shard 4-of-4", "vectors.npy: altered", "--force")
    with pytest.raises(IndexCorrupt):
        odqa.build_index(corpus, "s", None, sets(tiny), index_dir=index_root, quiet=True, shards=True)
    again = odqa.encode_shard(corpus, "s", "4/4", None, sets(tiny), index_dir=index_root, quiet=True)
    assert again.status == "rebuilt", err                 # a damaged shard is encoded again

    odqa.encode_shard(corpus, "s", "1/2", None, sets(tiny), index_dir=index_root, quiet=True)
    refused("2 different counts (2, 4)", "--shards N")
    code, out, err = cli(*merge, "--shards", "4")
    assert code == 0 and "merged from 4 shards" in out, err

    code, _, err = cli("index", corpus, "--name", "s", "--index-dir", index_root, "--shard", "5/4")
    assert code == 2 and err == "odqa: error: --shard 5/4: I counts from 1 to N"


def test_ray_local_mode_equals_the_single_process_index(tiny, corpus, questions_file, index_root):
    pytest.importorskip("ray", reason="Ray is the optional extra odqa[ray] (pip install 'odqa[ray]')")
    odqa.build_index(corpus, "one", None, sets(tiny), index_dir=index_root, quiet=True)
    res = odqa.build_index_ray(corpus, "ray", 4, None, sets(tiny), index_dir=index_root, quiet=True, num_cpus=2)
    assert res.status == "built" and res.manifest["dense"]["shards"]["encoded_by"] == ["ray"]
    assert res.manifest["dense"]["shards"]["count"] == 4
    same_index(index_root, "one", "ray", questions_file)
    # the shards are the ones the commands would write: a command finds them finished
    assert odqa.encode_shard(corpus, "ray", "3/4", None, sets(tiny), index_dir=index_root,
                             quiet=True).status == "up-to-date"


def test_without_ray_one_line_says_how_to_install_it(monkeypatch, corpus, index_root, tiny):
    import builtins
    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(OdqaError, match=r"pip install 'odqa\[ray\]'"):
        odqa.build_index_ray(corpus, "r", 2, None, sets(tiny), index_dir=index_root, quiet=True)


def test_elasticsearch_takes_the_merged_vectors(tiny, corpus, index_root):
    pytest.importorskip("elasticsearch", reason="the Elasticsearch client is the extra odqa[elasticsearch]")
    from tests.test_elastic import FakeES
    from odqa.index.indexing import load_index

    fake = FakeES()
    es = ["backend=elasticsearch", "elastic.backoff=1"]
    flat = sets(tiny, "dense.window_stride=0")            # Elasticsearch keeps one vector per passage
    odqa.build_index(corpus, "direct", None, flat + es, index_dir=index_root, quiet=True,
                     connection=fake.connection())
    for i in (1, 2, 3):
        odqa.encode_shard(corpus, "merged", f"{i}/3", None, flat, index_dir=index_root, quiet=True)
    res = odqa.build_index(corpus, "merged", None, flat + es, index_dir=index_root, quiet=True,
                           connection=fake.connection(), shards=True)
    assert res.manifest["dense"]["shards"]["count"] == 3 and res.manifest["backend"] == "elasticsearch"

    def docs(name):
        (concrete,) = fake.aliases[name]
        return fake.indices[concrete]["docs"]
    a, b = docs("direct"), docs("merged")
    assert sorted(a) == sorted(b) and len(a) == 12
    assert np.allclose([a[k]["vector"] for k in sorted(a)], [b[k]["vector"] for k in sorted(b)], atol=1e-5)
    q = "훈민정음을 창제한 임금"
    hits = [[h.passage.id for h in load_index(n, index_root, connection=fake.connection()).retriever("dense")
             .search([q], 5)[0]] for n in ("direct", "merged")]
    assert hits[0] == hits[1] and len(hits[0]) == 5

    # windowed shards do not fit: refused, saying how to encode them
    for i in (1, 2):
        odqa.encode_shard(corpus, "win", f"{i}/2", None, sets(tiny), index_dir=index_root, quiet=True)
    with pytest.raises(OdqaError, match=r"shard 1-of-2 .*dense.window_stride differs \(4 in the shard vs 0 here\).*"
                                        r"`window_stride` 0"):
        odqa.build_index(corpus, "win", None, sets(tiny) + es, index_dir=index_root, quiet=True,
                         connection=fake.connection(), shards=True)
