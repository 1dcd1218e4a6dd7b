"""Faults around index writes, in real processes: usage errors, Ctrl-C during a build, two writers
on one index, a killed writer (its lock and its worker processes), readers during a rebuild, and
what a rebuild keeps of the dense part."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PASSAGES, in_threads, write_jsonl
from tests.test_cli import odqa

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _as_a_terminal_would():
    signal.signal(signal.SIGINT, signal.SIG_DFL)      # a background parent may have left Ctrl-C ignored


def spawn(*args, cwd) -> subprocess.Popen:
    """`python -m odqa ARGS` started in its own process group, importing this checkout's odqa."""
    env = {**os.environ, "ODQA_QUIET": "1", "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "odqa", *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_as_a_terminal_would)


def run(*args, cwd) -> subprocess.CompletedProcess:
    p = spawn(*args, cwd=cwd)
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def big_corpus(path: Path, n: int) -> Path:
    """n distinct passages: enough for mecab's worker processes and a build of a few seconds."""
    rows = [{"id": f"g{i}", "title": f"문서 {i}",
             "text": f"{i}번째 문서는 조선 시대의 임금과 제주도의 한라산, 그리고 김치에 관한 이야기이다. " * 3}
            for i in range(n)]
    return write_jsonl(path, rows)


def wait_for(cond, timeout=120.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    return big_corpus(base / "big.jsonl", 30000)


# ----------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize("argv", [[], ["bogus"], ["retrieve", "질문"], ["retrieve", "--index", "x"],
                                  ["retrieve", "질문", "--index", "x", "-k", "0"], ["ask", "--index", "x"],
                                  ["index", "--name", "x"], ["index", "c.jsonl"]])
def test_usage_errors_are_typers_message_and_exit_2(argv, tmp_path):
    p = odqa(*argv, cwd=tmp_path, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout, (argv, p.stderr)
    assert "Usage:" in p.stderr + p.stdout, (argv, p.stderr, p.stdout)


def test_version_prints_the_version(tmp_path):
    import odqa as api
    p = odqa("--version", cwd=tmp_path)
    assert p.stdout.strip() == f"odqa {api.__version__}"


# ----------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_during_a_build_keeps_the_previous_index(big, tmp_path, corpus_file):
    odqa("index", corpus_file, "--name", "wiki", cwd=tmp_path)
    before = (tmp_path / "indexes" / "wiki" / "manifest.json").read_text()
    p = spawn("index", big, "--name", "wiki", cwd=tmp_path)
    wait_for(lambda: any((tmp_path / "indexes").glob(".wiki.tmp-*")) or p.poll() is not None, what="the build")
    time.sleep(1.0)                                    # well inside the analysis
    assert p.poll() is None, "the build ended before it could be interrupted: make the corpus bigger"
    os.killpg(p.pid, signal.SIGINT)                    # what Ctrl-C in a terminal does: the whole group
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().splitlines() == ["odqa: interrupted: index 'wiki' left unchanged"], err
    assert (tmp_path / "indexes" / "wiki" / "manifest.json").read_text() == before
    assert not list((tmp_path / "indexes").glob(".wiki.*"))          # no temporary folder left behind
    assert "한라산" in odqa("retrieve", "한라산", "--index", "wiki", cwd=tmp_path).stdout


# ----------------------------------------------------------------------------- writers
def test_two_builds_of_one_index_one_builds_the_other_fails_or_waits(big, tmp_path):
    first = spawn("index", big, "--name", "wiki", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "indexes" / ".locks" / "wiki.pid").exists(), what="the first build's lock")
    second = run("index", big, "--name", "wiki", cwd=tmp_path)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 7 and len(lines) == 1 and f"pid {first.pid}" in lines[0] and "--wait" in lines[0]
    waiting = spawn("index", big, "--name", "wiki", "--wait", "--json", cwd=tmp_path)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0 and "waiting for another build of index 'wiki'" in err, err
    assert json.loads(out)["status"] == "up-to-date"                  # it found the first one's index complete
    rep = json.loads(odqa("index", "--verify", "--name", "wiki", "--json", cwd=tmp_path).stdout)
    assert rep["ok"] and rep["files"] >= 9


def test_a_killed_writer_leaves_no_lock_and_no_worker(big, tmp_path, corpus_file):
    p = spawn("index", big, "--name", "wiki", cwd=tmp_path)
    wait_for(lambda: len([c for c in children(p.pid) if alive(c)]) >= 2 or p.poll() is not None,
             what="the analyzer's worker processes")
    workers = [c for c in children(p.pid) if alive(c)]
    assert p.poll() is None and len(workers) >= 2
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    wait_for(lambda: not any(alive(w) for w in workers), timeout=5, what="the workers to end with their parent")
    # its lock went with it: the next build neither fails nor waits
    res = run("index", corpus_file, "--name", "wiki", "--json", cwd=tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "built" and "waiting" not in res.stderr
    assert not list((tmp_path / "indexes").glob(".wiki.tmp-*"))       # the killed build's folder is cleared


# ----------------------------------------------------------------------------- readers during a rebuild
def test_readers_never_see_a_half_swapped_index(tmp_path):
    import odqa as api
    from odqa.errors import IndexStale
    root = tmp_path / "indexes"
    a = write_jsonl(tmp_path / "a.jsonl", PASSAGES[:5])
    b = write_jsonl(tmp_path / "b.jsonl", PASSAGES[:5] + [{"id": "x1", "title": "독도", "text": "독도는 동해에 있는 섬이다."}])
    api.build_index(a, "wiki", index_dir=root, quiet=True)
    done, seen, stale = [], set(), []

    def work(i):
        if i == 0:
            for n in range(12):
                api.build_index(b if n % 2 == 0 else a, "wiki", index_dir=root, quiet=True)
            done.append(True)
            return
        while not done:
            try:
                idx = api.load_index("wiki", root)
                hits = idx.sparse.search(["독도 한라산"], 10)[0]
            except IndexStale as e:            # rebuilt between load and the first search: says to reload
                stale.append(str(e))
                continue
            n = len(idx.passages)
            assert n in (5, 6) and idx.manifest["corpus"]["passages"] == n
            assert any(h.passage.id == "x1" for h in hits) == (n == 6)
            seen.add(n)

    in_threads(3, work)
    assert seen == {5, 6}
    assert all("was rebuilt after this process loaded it" in s for s in stale)


# ----------------------------------------------------------------------------- dense part on a rebuild
def test_a_rebuild_without_dense_keeps_the_vectors_and_says_so(tmp_path, corpus_file, tiny):
    built = json.loads(odqa("index", corpus_file, "--name", "wiki", "--dense", "--encoder", tiny, "--set",
                            "dense.max_length=32", "--json", cwd=tmp_path).stdout)
    assert built["parts"] == {"sparse": "built", "dense": "built"}
    again = json.loads(odqa("index", corpus_file, "--name", "wiki", "--json", cwd=tmp_path).stdout)
    assert again["status"] == "up-to-date" and again["parts"] == {"sparse": "kept", "dense": "kept"}
    text = odqa("index", corpus_file, "--name", "wiki", "--set", "bm25.k1=1.1", cwd=tmp_path).stdout
    assert "rebuilt: sparse" in text and "kept: dense" in text
    m = json.loads((tmp_path / "indexes" / "wiki" / "manifest.json").read_text())
    assert m["dense"]["encoder"] == tiny and m["sparse"]["k1"] == 1.1
    dropped = json.loads(odqa("index", corpus_file, "--name", "wiki", "--no-dense", "--json", cwd=tmp_path).stdout)
    assert dropped["parts"]["dense"] == "dropped" and dropped["manifest"]["dense"] is None
    assert not (tmp_path / "indexes" / "wiki" / "dense").exists()
