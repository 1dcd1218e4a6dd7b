"""Live index updates: after add / delete / upsert (and after compaction) every query's top-k equals a full
rebuild's over the same passages; failures leave the previous index serving."""

import errno
import json
import random

import numpy as np
import pytest

import odqa
from odqa.errors import OdqaError, StorageError
from odqa.retrieval.filters import parse_filters
from tests.conftest import write_jsonl

WS = ["analyzer.name=whitespace", "bm25.k1=1.2", "bm25.b=0.75"]
WORDS = [f"w{i}" for i in range(60)]


def rows(n, start=0, seed=0):
    rng = random.Random(seed)
    return [{"id": f"d{i}", "title": f"t{i % 7}",
             "text": " ".join(rng.choice(WORDS[:rng.randint(5, 60)]) for _ in range(rng.randint(3, 40)))}
            for i in range(start, start + n)]


QUERIES = ["w1", "w3 w7 w3", "w0 nope", "w59 w2 w11", "t3 w5", "w40 w41 w42 w43", "nope"]


def ranking(name, root, k=10):
    idx = odqa.load_index(name, root)
    hits = idx.sparse.search(QUERIES, k)
    return [[(h.passage.id, h.score) for h in q] for q in hits]


def rebuilt(tmp_path, name, passages):
    path = write_jsonl(tmp_path / f"{name}.jsonl", passages)
    odqa.build_index(path, name, overrides=WS, index_dir=tmp_path / "idx", quiet=True)
    return ranking(name, tmp_path / "idx")


def live_rows(name, root):
    return [{"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id}
            for p in odqa.load_index(name, root).passages]


@pytest.fixture
def base(tmp_path):
    root = tmp_path / "idx"
    odqa.build_index(write_jsonl(tmp_path / "c.jsonl", rows(80)), "live", overrides=WS, index_dir=root, quiet=True)
    return root


@pytest.mark.parametrize("method", ["atire", "bm25+"])
def test_add_delete_upsert_then_compact_rank_like_a_full_rebuild(tmp_path, method):
    root = tmp_path / "idx"
    ws = WS + [f"bm25.method={method}"]
    odqa.build_index(write_jsonl(tmp_path / "c.jsonl", rows(80)), "live", overrides=ws, index_dir=root, quiet=True)
    rep = odqa.add_passages("live", write_jsonl(tmp_path / "new.jsonl", rows(10, 80, seed=1)), root)
    assert rep.status == "updated" and len(rep.added) == 10 and rep.passages == 90 and rep.segments == 2
    rep = odqa.delete_passages("live", ["d0", "d5", "d81"], root)
    assert rep.deleted == ["d0", "d5", "d81"] and rep.passages == 87 and rep.deleted_pending == 3
    changed = [{"id": "d7", "title": "x", "text": "w1 w1 w2 fresh"}, {"id": "n1", "title": "", "text": "w3 w7 w9"}]
    rep = odqa.upsert_passages("live", changed, root)
    assert rep.replaced == ["d7"] and sorted(rep.added) == ["d7", "n1"]
    expected = [r for r in rows(80) if r["id"] not in ("d0", "d5", "d7")] + \
               [r for r in rows(10, 80, seed=1) if r["id"] != "d81"] + changed
    live = live_rows("live", root)
    assert [r["id"] for r in live] == [r["id"] for r in expected]
    got = ranking("live", root)
    for r in expected:
        r.setdefault("doc_id", "")
    odqa.build_index(write_jsonl(tmp_path / "r.jsonl", expected), "full", overrides=ws, index_dir=root, quiet=True)
    want = ranking("full", root)
    assert got == want                                 # same ids, same float32 scores, same order
    assert any(got)                                    # the queries do find passages
    rep = odqa.compact_index("live", root)
    assert rep.status == "compacted" and rep.segments == 1 and rep.passages == len(expected)
    idx = odqa.load_index("live", root)
    assert "live" not in idx.manifest and type(idx.sparse.scorer).__name__ == "BM25Scorer"   # the build's fast path
    assert ranking("live", root) == want
    assert odqa.verify_index("live", root).problems == []


def test_an_added_duplicate_text_becomes_an_alias_and_ids_stay_valid(tmp_path, base):
    text = rows(80)[3]["text"]
    rep = odqa.add_passages("live", [{"id": "copy", "title": "", "text": text}], base)
    assert rep.aliased == {"copy": "d3"} and rep.added == [] and rep.passages == 80
    idx = odqa.load_index("live", base)
    assert idx.canonical("copy") == "d3"
    rep = odqa.delete_passages("live", ["d3"], base)          # the passage and its aliases go
    assert rep.deleted == ["d3"]
    assert "copy" not in odqa.load_index("live", base).aliases


def test_refusals_name_the_id_and_change_nothing(tmp_path, base):
    before = (base / "live" / "manifest.json").read_bytes()
    with pytest.raises(OdqaError, match="'d1' is already in index 'live'"):
        odqa.add_passages("live", [{"id": "d1", "text": "w1 other"}], base)
    with pytest.raises(OdqaError, match="no passage or alias with id 'zzz'"):
        odqa.delete_passages("live", ["d2", "zzz"], base)
    assert (base / "live" / "manifest.json").read_bytes() == before
    assert len(odqa.load_index("live", base).passages) == 80


def test_a_rebuild_after_updates_is_not_up_to_date(tmp_path, base):
    odqa.delete_passages("live", ["d1"], base)
    res = odqa.build_index(tmp_path / "c.jsonl", "live", overrides=WS, index_dir=base, quiet=True)
    assert res.status == "rebuilt" and "live updates" in res.reasons
    assert len(odqa.load_index("live", base).passages) == 80


def leftovers(root):
    return sorted(p.name for p in root.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("when", ["add", "compact", "build"])
def test_disk_full_is_one_line_and_the_previous_index_serves(tmp_path, base, monkeypatch, when):
    if when == "compact":
        odqa.delete_passages("live", ["d1"], base)
    want = ranking("live", base)
    real_save = np.save

    def full(path, *a, **kw):
        if ".tmp-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, *a, **kw)
    monkeypatch.setattr(np, "save", full)
    with pytest.raises(StorageError, match="no space left on the device; index 'live' left unchanged") as e:
        if when == "add":
            odqa.add_passages("live", rows(3, 200), base)
        elif when == "compact":
            odqa.compact_index("live", base)
        else:
            odqa.build_index(tmp_path / "c.jsonl", "live", overrides=WS + ["bm25.k1=2"], index_dir=base, quiet=True)
    assert e.value.exit_code == 8 and "\n" not in str(e.value)
    monkeypatch.setattr(np, "save", real_save)
    assert leftovers(base) == []
    assert ranking("live", base) == want
    assert odqa.verify_index("live", base).problems == []


def test_a_read_only_folder_is_one_line(tmp_path, base, monkeypatch):
    import odqa.atomic as atomic
    real = atomic.Path.mkdir

    def refuse(self, *a, **kw):
        if ".tmp-" in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **kw)
    monkeypatch.setattr(atomic.Path, "mkdir", refuse)
    with pytest.raises(StorageError, match="read-only file system; index 'live' left unchanged"):
        odqa.delete_passages("live", ["d1"], base)
    monkeypatch.setattr(atomic.Path, "mkdir", real)
    assert len(odqa.load_index("live", base).passages) == 80 and leftovers(base) == []


def test_a_crash_before_the_swap_leaves_the_previous_index(tmp_path, base, monkeypatch):
    from odqa.index import manifest as mf
    want = ranking("live", base)

    def crash(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(mf, "write_manifest", crash)
    with pytest.raises(odqa.Interrupted, match="left unchanged"):
        odqa.add_passages("live", rows(3, 200), base)
    assert ranking("live", base) == want and leftovers(base) == []


def test_updates_on_an_index_with_stale_files_are_refused(tmp_path, base):
    f = base / "live" / "aliases.json"
    f.write_text(json.dumps({"x": "y"}), encoding="utf-8")
    with pytest.raises(odqa.IndexCorrupt):
        odqa.delete_passages("live", ["d1"], base)


KO = ["한라산은 제주도에 있는 산이다", "지리산의 최고봉은 천왕봉이다", "세종대왕은 훈민정음을 창제하였다",
      "이순신은 거북선으로 왜군을 물리쳤다", "김치는 한국의 전통 음식이다", "백록담은 한라산 정상에 있다"]


def ko_rows(n, start=0, seed=0):
    rng = random.Random(seed)
    return [{"id": f"k{i}", "title": "", "text": " ".join(rng.choice(KO) for _ in range(rng.randint(1, 4))) + f" {i}"}
            for i in range(start, start + n)]


def dense_ranking(name, root, queries=("한라산 정상", "훈민정음", "전통 음식 김치", "거북선")):
    hits = odqa.load_index(name, root).dense().search(list(queries), 8)
    return [[h.passage.id for h in q] for q in hits], [[h.score for h in q] for q in hits]


@pytest.mark.parametrize("kind,stride", [("flat", 0), ("hnsw", 0), ("flat", 4)])
def test_dense_vectors_follow_updates_like_a_full_rebuild(tmp_path, tiny, kind, stride):
    root = tmp_path / "idx"
    ov = WS + ["dense.enabled=true", f"dense.encoder={tiny}", f"dense.index={kind}", f"dense.window_stride={stride}"]
    if stride:
        ov.append("dense.max_length=12")
    odqa.build_index(write_jsonl(tmp_path / "c.jsonl", ko_rows(30)), "live", overrides=ov, index_dir=root, quiet=True)
    odqa.update_passages("live", add=ko_rows(5, 30, seed=1), delete=["k0", "k7", "k31"][:2], index_dir=root)
    odqa.upsert_passages("live", [{"id": "k3", "title": "", "text": "김치는 한라산에 없다"}], root)
    odqa.delete_passages("live", ["k31"], root)
    expected = live_rows("live", root)
    assert [r["id"] for r in expected][-2:] == ["k34", "k3"]
    odqa.build_index(write_jsonl(tmp_path / "r.jsonl", expected), "full", overrides=ov, index_dir=root, quiet=True)
    (got_ids, got_s), (want_ids, want_s) = dense_ranking("live", root), dense_ranking("full", root)
    assert got_ids == want_ids
    assert np.allclose(got_s, want_s, atol=1e-5)
    odqa.compact_index("live", root)
    assert dense_ranking("live", root)[0] == want_ids
    idx = odqa.load_index("live", root)
    assert idx.dense().index.ntotal == odqa.load_index("full", root).dense().index.ntotal


def cli(*args, cwd):
    from tests.test_cli import odqa as run
    return run(*args, cwd=cwd, check=False)


def test_cli_update_forms_and_their_json(tmp_path, base):
    new = write_jsonl(tmp_path / "new.jsonl", rows(3, 100, seed=4))
    p = cli("index", "--name", "live", "--index-dir", base, "--add", new, "--delete", "d1", "--delete", "d2", "--json",
            cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "updated" and out["added"] == ["d100", "d101", "d102"] and out["deleted"] == ["d1", "d2"]
    assert out["passages"] == 81 and out["segments"] == 2 and out["deleted_pending"] == 2
    assert set(out) == {"index", "status", "path", "added", "replaced", "deleted", "aliased", "empty_skipped",
                        "passages", "deleted_pending", "segments", "seconds"}
    p = cli("index", "--name", "live", "--index-dir", base, "--upsert", new, "--compact", cwd=tmp_path)
    assert p.returncode == 0 and "compacted index 'live': 81 passages in one segment" in p.stdout
    p = cli("index", "--name", "live", "--index-dir", base, "--delete", "nope", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "'nope'" in p.stderr
    p = cli("index", tmp_path / "c.jsonl", "--name", "live", "--index-dir", base, "--add", new, cwd=tmp_path)
    assert p.returncode == 2 and "give no CORPUS" in p.stderr


def test_elasticsearch_update_actions_delete_then_index_by_id():
    from odqa.index.elastic.updates import actions
    got = list(actions("wiki-1", [odqa.Passage("n1", "제목", "본문", "d")], ["p1", "p2"], True, vectors=[[0.5, 0.25]]))
    assert [(a["_op_type"], a["_id"]) for a in got] == [("delete", "p1"), ("delete", "p2"), ("index", "n1")]
    assert got[2]["_index"] == "wiki-1" and got[2]["_source"]["content"] == "제목\n본문"
    assert got[2]["_source"]["vector"] == [0.5, 0.25] and got[2]["_source"]["doc_id"] == "d"


def test_an_index_built_without_raw_counts_is_counted_on_its_first_update(tmp_path, base):
    import shutil

    from odqa.index import manifest as mf
    folder = base / "live"
    for f in ("bm25/tf.npy", "bm25/doc_len.npy"):
        (folder / f).unlink()
    shutil.rmtree(folder / "keys")
    mf.write_manifest(folder, mf.read_manifest(folder, "live"))      # as an older odqa recorded it
    odqa.update_passages("live", add=rows(4, 300, seed=9), delete=["d2", "d40"], index_dir=base)
    expected = live_rows("live", base)
    odqa.build_index(write_jsonl(tmp_path / "r.jsonl", expected), "full", overrides=WS, index_dir=base, quiet=True)
    assert ranking("live", base) == ranking("full", base)
    assert odqa.verify_index("live", base).problems == []


def test_filters_apply_to_an_updated_index_like_to_a_rebuilt_one(tmp_path, base):
    tagged = [dict(r, source="new" if i % 2 else "old") for i, r in enumerate(rows(20, 80, seed=2))]
    odqa.add_passages("live", write_jsonl(tmp_path / "tagged.jsonl", tagged), base)
    odqa.delete_passages("live", ["d81", "d3"], base)
    kept = [r for r in live_rows("live", base)]
    by_id = {r["id"]: r for r in tagged}
    full = [dict(r, **({"source": by_id[r["id"]]["source"]} if r["id"] in by_id else {})) for r in kept]
    odqa.build_index(write_jsonl(tmp_path / "full.jsonl", full), "full", overrides=WS, index_dir=base, quiet=True)
    for name in ("live", "full"):
        idx = odqa.load_index(name, base)
        hits = idx.sparse.search(QUERIES, 5, filters=parse_filters(["source=new"]))
        got = [[(h.passage.id, h.score) for h in q] for q in hits]
        assert all(by_id[pid]["source"] == "new" for q in got for pid, _ in q)
        if name == "live":
            live = got
    assert live == got and any(live)
