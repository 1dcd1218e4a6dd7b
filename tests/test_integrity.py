"""Every file of a built local index, deleted, truncated or with one byte flipped: the next
`odqa retrieve` (for the files only live updates read, the next `odqa index --add`) fails with one line
naming that file (no traceback); `odqa index` rebuilds it;
`odqa index --verify` reports it. The files are found in the folder, so a new kind is covered."""

import json
import shutil

import pytest

from tests.conftest import PASSAGES, write_jsonl
from tests.test_cli import odqa

DAMAGE = {
    "deleted": lambda f: f.unlink(),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    "flipped": lambda f: f.write_bytes(_flip(f.read_bytes())),
}


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    b[len(b) // 2] ^= 0xFF
    return bytes(b)


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny):
    """A sparse-only and a dense index of a tiny corpus (tiny encoder), built once."""
    base = tmp_path_factory.mktemp("integrity")
    corpus = write_jsonl(base / "corpus.jsonl", PASSAGES)
    odqa("index", corpus, "--name", "sparse", cwd=base)
    odqa("index", corpus, "--name", "dense", "--dense", "--encoder", tiny, "--set", "dense.max_length=32", cwd=base)
    return base, corpus


def files_of(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


UPDATE_ONLY = ("keys/", "bm25/tf.npy", "bm25/doc_len.npy")   # read by live updates, not by a search


def cases(base):
    for name, mode in (("sparse", "sparse"), ("dense", "hybrid")):
        for rel in files_of(base / "indexes" / name):
            for damage in DAMAGE:
                yield name, mode, rel, damage


def test_every_file_is_recorded(built):
    base, _ = built
    for name in ("sparse", "dense"):
        folder = base / "indexes" / name
        m = json.loads((folder / "manifest.json").read_text())
        assert sorted(m["checksums"]["files"]) == [f for f in files_of(folder) if f != "manifest.json"]
        assert any(f.startswith("dense/") for f in m["checksums"]["files"]) == (name == "dense")


def test_a_damaged_file_is_one_line_naming_it(built, tmp_path):
    base, corpus = built
    seen = 0
    for name, mode, rel, damage in cases(base):
        work = tmp_path / f"{name}-{rel.replace('/', '_')}-{damage}"
        shutil.copytree(base / "indexes", work / "indexes")
        DAMAGE[damage](work / "indexes" / name / rel)
        if rel.startswith(UPDATE_ONLY) and damage == "flipped":      # sizes are checked at load, contents on read
            new = write_jsonl(work / "new.jsonl", [{"id": "new", "title": "새", "text": "새 문서는 한라산에 대한 것이다."}])
            p = odqa("index", "--name", name, "--add", new, cwd=work, check=False)
        else:
            p = odqa("retrieve", "한라산", "--index", name, "--mode", mode, cwd=work, check=False)
        lines = p.stderr.strip().splitlines()
        assert p.returncode in (4, 5) and len(lines) == 1 and "Traceback" not in p.stderr, (rel, damage, p.stderr)
        assert f"{name}/{rel}" in lines[0] and "odqa index" in lines[0], (rel, damage, lines)
        if rel == "manifest.json" and damage == "deleted":
            assert "not found" not in lines[0] and "manifest missing" in lines[0]
        seen += 1
    covered = set(files_of(base / "indexes" / "dense"))
    assert {"manifest.json", "passages.jsonl", "aliases.json", "bm25/vocab.index.json", "dense/index.faiss"} <= covered
    assert seen == 3 * (len(files_of(base / "indexes" / "sparse")) + len(covered))


def test_odqa_index_rebuilds_a_damaged_index_and_verify_reports(built, tmp_path):
    base, corpus = built
    shutil.copytree(base / "indexes", tmp_path / "indexes")
    target = tmp_path / "indexes" / "dense" / "dense" / "index.faiss"
    DAMAGE["flipped"](target)
    p = odqa("index", "--verify", "--name", "dense", cwd=tmp_path, check=False)
    assert p.returncode == 5 and "index.faiss: altered" in p.stdout and "1 of" in p.stderr
    out = json.loads(odqa("index", corpus, "--name", "dense", "--json", cwd=tmp_path).stdout)
    assert out["status"] == "rebuilt" and any("index.faiss: altered" in r for r in out["changed"])
    assert out["parts"] == {"sparse": "rebuilt", "dense": "rebuilt"}      # with the dense part it had
    rep = json.loads(odqa("index", "--verify", "--name", "dense", "--json", cwd=tmp_path).stdout)
    assert rep["ok"] and rep["checksums"] and rep["files"] == len(files_of(tmp_path / "indexes" / "dense"))
    assert odqa("retrieve", "한라산", "--index", "dense", "--mode", "hybrid", cwd=tmp_path).returncode == 0


def test_a_file_altered_between_loads_of_one_process_is_caught(built, tmp_path):
    """The checksum is memoised on (path, size, mtime): rewriting a file re-checks it."""
    import odqa as api
    base, _ = built
    shutil.copytree(base / "indexes", tmp_path / "indexes")
    root = tmp_path / "indexes"
    assert api.load_index("sparse", root).sparse.search(["한라산"], 1)
    DAMAGE["flipped"](root / "sparse" / "bm25" / "vocab.index.json")
    with pytest.raises(api.IndexCorrupt, match="vocab.index.json: altered"):
        api.load_index("sparse", root).sparse
