import json
import os
import signal
import subprocess
import sys
import time

import pytest

from odqa.config import IndexConfig, apply_overrides
from odqa.errors import OdqaError
from odqa.index import manifest as store
from odqa.index.indexing import build_index, load_index
from tests.conftest import write_jsonl


def test_manifest_records_what_was_built(corpus_file, index_root):
    res = build_index(corpus_file, "t", IndexConfig(), index_root)
    assert res.status == "built"
    m = json.loads((index_root / "t" / "manifest.json").read_text())
    assert m["format_version"] == store.FORMAT_VERSION and m["odqa_version"]
    assert m["corpus"]["passages"] == 5 and m["corpus"]["duplicates_merged"] == 1
    assert len(m["corpus"]["sha256"]) == 64
    assert m["analyzer"]["name"] == "mecab" and "python-mecab-ko" in m["analyzer"]["version"]
    assert m["analyzer"]["pos"] and m["sparse"]["method"] == "atire"
    assert {"k1", "b", "built_at", "build_seconds"} <= set(m["sparse"]) | set(m)
    assert not list(index_root.glob(".t.*"))  # no temporary folders left


def test_rebuild_is_noop_unless_changed_or_forced(corpus_file, index_root):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    assert build_index(corpus_file, "t", IndexConfig(), index_root).status == "up-to-date"
    assert build_index(corpus_file, "t", IndexConfig(), index_root, force=True).status == "rebuilt"
    cfg = apply_overrides(IndexConfig(), ["bm25.k1=1.5"])
    res = build_index(corpus_file, "t", cfg, index_root)
    assert res.status == "rebuilt" and res.reasons == ["sparse"]
    assert load_index("t", index_root).manifest["sparse"]["k1"] == 1.5


def test_load_reports_exactly_what_is_stale(corpus_file, index_root, monkeypatch):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    assert load_index("t", index_root).stale == []
    with open(corpus_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "p9", "text": "새 문서"}, ensure_ascii=False) + "\n")
    stale = load_index("t", index_root).stale
    assert len(stale) == 1 and "changed since the build" in stale[0] and str(corpus_file) in stale[0]
    import odqa.index.local as local
    monkeypatch.setattr(local, "installed_version", lambda name: "mecab-9.9")
    assert any("now mecab-9.9" in s for s in load_index("t", index_root).stale)
    res = build_index(corpus_file, "t", IndexConfig(), index_root)
    assert res.status == "rebuilt" and "corpus content" in res.reasons


def test_format_version_and_missing_index(corpus_file, index_root):
    with pytest.raises(OdqaError, match=r"index 'nope' not found.*odqa index CORPUS --name nope"):
        load_index("nope", index_root)
    build_index(corpus_file, "t", IndexConfig(), index_root)
    mf = index_root / "t" / "manifest.json"
    m = json.loads(mf.read_text())
    m["format_version"] = 999
    mf.write_text(json.dumps(m))
    with pytest.raises(OdqaError, match="format version 999"):
        load_index("t", index_root)


def test_failed_build_keeps_previous_index(corpus_file, index_root, tmp_path):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "text": "가"}])
    bad.write_text(bad.read_text() + "{oops\n")
    with pytest.raises(OdqaError):
        build_index(bad, "t", IndexConfig(), index_root, force=True)
    idx = load_index("t", index_root)
    assert len(idx.passages) == 5 and not list(index_root.glob(".t.*"))


def test_killed_build_leaves_previous_index_loadable(corpus_file, index_root, tmp_path):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    before = [[h.passage.id for h in hits] for hits in load_index("t", index_root).sparse.search(["한라산 높이"], 3)]
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as fh:
        for i in range(150_000):
            fh.write(json.dumps({"id": f"d{i}", "text": f"문서 {i}번은 한라산과 지리산과 설악산에 관한 긴 설명을 담고 있다 {i * 7}"},
                                ensure_ascii=False) + "\n")
    env = {**os.environ, "ODQA_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "odqa", "index", str(big), "--name", "t", "--force",
                             "--index-dir", str(index_root), "--analyzer", "whitespace"], env=env)
    deadline = time.time() + 60
    while not list(index_root.glob(".t.tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "build finished before it could be interrupted"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    idx = load_index("t", index_root)
    assert len(idx.passages) == 5
    assert [[h.passage.id for h in hits] for hits in idx.sparse.search(["한라산 높이"], 3)] == before
    # the next build cleans up what the killed one left
    build_index(corpus_file, "t", IndexConfig(), index_root, force=True)
    assert not list(index_root.glob(".t.*"))


def test_interrupted_swap_is_recovered(corpus_file, index_root):
    build_index(corpus_file, "t", IndexConfig(), index_root)
    (index_root / "t").rename(index_root / ".t.old-12345")  # killed between the two renames
    assert len(load_index("t", index_root).passages) == 5


def test_decompound_is_recorded_and_a_change_rebuilds(corpus_file, index_root):
    res = build_index(corpus_file, "t", apply_overrides(IndexConfig(), ["analyzer.decompound=mixed"]), index_root)
    assert res.manifest["analyzer"]["decompound"] == "mixed"
    idx = load_index("t", index_root)
    assert idx.sparse.analyzer.decompound == "mixed"            # queries analysed as the passages were
    again = build_index(corpus_file, "t", apply_overrides(IndexConfig(), ["analyzer.decompound=mixed"]), index_root)
    assert again.status == "up-to-date"
    none = build_index(corpus_file, "t", apply_overrides(IndexConfig(), ["analyzer.decompound=none"]), index_root)
    assert none.status == "rebuilt" and none.reasons == ["analyzer"]
    assert load_index("t", index_root).sparse.analyzer.decompound == "none"


def test_an_index_built_before_decompounding_reads_as_none(corpus_file, index_root):
    from odqa.index import manifest as mf
    build_index(corpus_file, "t", apply_overrides(IndexConfig(), ["analyzer.decompound=none"]), index_root)
    folder = index_root / "t"
    m = json.loads((folder / "manifest.json").read_text())
    del m["analyzer"]["decompound"]                              # as an older odqa wrote it
    mf.write_manifest(folder, m, rehash=False)
    assert load_index("t", index_root).sparse.analyzer.decompound == "none"
    cfg = apply_overrides(IndexConfig(), ["analyzer.decompound=none"])
    assert build_index(corpus_file, "t", cfg, index_root).status == "up-to-date"
    res = build_index(corpus_file, "t", apply_overrides(IndexConfig(), ["analyzer.decompound=mixed"]), index_root)
    assert res.status == "rebuilt" and res.reasons == ["analyzer"]
