import sys
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

os.environ.setdefault("ODQA_QUIET", "1")

PASSAGES = [
    {"id": "p1", "title": "한라산", "text": "한라산은 제주도에 있는 산으로 높이는 1,947미터이다. 정상에는 백록담이라는 화구호가 있다."},
    {"id": "p2", "title": "지리산", "text": "지리산은 경상남도와 전라남도, 전라북도에 걸쳐 있는 산이다. 최고봉은 천왕봉이다."},
    {"id": "p3", "title": "세종대왕", "text": "세종대왕은 조선의 제4대 임금으로 훈민정음을 창제하였다. 훈민정음은 1446년에 반포되었다."},
    {"id": "p4", "title": "이순신", "text": "이순신은 조선 중기의 무신으로 임진왜란 때 거북선을 이용해 왜군을 물리쳤다."},
    {"id": "p5", "title": "김치", "text": "김치는 배추와 무 등의 채소를 소금에 절인 뒤 양념에 버무려 발효시킨 한국의 전통 음식이다."},
    {"id": "p6", "title": "한라산", "text": "한라산은 제주도에 있는 산으로 높이는 1,947미터이다. 정상에는 백록담이라는 화구호가 있다."},
]
QUESTIONS = [
    {"id": "q1", "question": "백록담이 있는 산은 어디인가?", "answers": ["한라산"], "gold_ids": ["p1"]},
    {"id": "q2", "question": "훈민정음을 창제한 임금은?", "answers": ["세종대왕"], "gold_ids": ["p3"]},
    {"id": "q3", "question": "거북선으로 왜군을 물리친 무신은?", "answers": ["이순신"], "gold_ids": ["p4"]},
    {"id": "q4", "question": "지리산의 최고봉은?", "answers": ["천왕봉"], "gold_ids": ["p2"]},
    {"id": "q5", "question": "제주도 산 정상의 화구호 이름은?", "answers": ["백록담"], "gold_ids": ["p6"]},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def squad_file(path):
    paras = []
    for p in PASSAGES[:5]:
        qas = [{"id": q["id"], "question": q["question"],
                "answers": [{"text": q["answers"][0], "answer_start": max(p["text"].find(q["answers"][0]), 0)}]}
               for q in QUESTIONS if p["id"] in q["gold_ids"]]
        qas += [{"id": f"{p['id']}-t", "question": p["title"] + "에 대해", "answers": [{"text": p["title"], "answer_start": 0}]}]
        paras.append({"context": p["text"], "qas": qas})
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paras}]}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def corpus_file(tmp_path):
    return write_jsonl(tmp_path / "corpus.jsonl", PASSAGES)


@pytest.fixture
def questions_file(tmp_path):
    return write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)


@pytest.fixture
def index_root(tmp_path):
    root = tmp_path / "indexes"
    root.mkdir()
    return root


def in_threads(n: int, work) -> list:
    """`work(i)` for i in range(n), each on its own thread at once; their results in order (a worker's
    exception is raised here)."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(work, range(n)))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> str:
    """The folder of a tiny random backbone (BERT, 32 wide, 2 layers, a WordPiece vocabulary of the test
    texts), made once for the whole run; tests read it and never write into it (copy it to change it)."""
    from tests.tiny_model import make_tiny_backbone
    return str(make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bb"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """ODQA_CACHE pointed at a fresh folder for the module's tests (exported and rebuilt models land there)."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("cache")
        mp.setenv("ODQA_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def serve_index_root(tmp_path_factory, tiny):
    """An index folder with index 'h' (BM25 + dense vectors of a tiny encoder): served with reader 'none'
    it answers in milliseconds (the server's tests)."""
    import odqa
    tmp = tmp_path_factory.mktemp("serve")
    odqa.build_index(write_jsonl(tmp / "corpus.jsonl", PASSAGES), "h", None,
                     ["dense.enabled=true", f"dense.encoder={tiny}", "dense.max_length=64"], index_dir=tmp / "indexes",
                     quiet=True)
    return tmp / "indexes"


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `odqa ARGS` in-process: (exit code, stdout, stderr stripped)."""
    from odqa.cli.main import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["odqa", *map(str, args)])
        capsys.readouterr()                 # what the test printed before (a backbone being saved)
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err.strip()
    return run


@pytest.fixture(scope="session")
def demo_index_root(tmp_path_factory):
    """An index folder holding the bundled demo corpus as index 'demo' (BM25 only: built in seconds), made
    once for the whole run; tests only read it."""
    import odqa
    from odqa.api.demo import demo_file
    root = tmp_path_factory.mktemp("demo") / "indexes"
    odqa.build_index(demo_file("demo_corpus.jsonl"), "demo", None, index_dir=root, quiet=True)
    return root


@pytest.fixture(scope="session")
def meta_index_root(tmp_path_factory):
    """Index 'm': the test passages with metadata fields (source: wiki for p1-p3, news for p4-p6; year), BM25 only."""
    import odqa
    tmp = tmp_path_factory.mktemp("meta")
    rows = [{**p, "source": "wiki" if i < 3 else "news", "year": 2000 + i} for i, p in enumerate(PASSAGES)]
    odqa.build_index(write_jsonl(tmp / "corpus.jsonl", rows), "m", None, index_dir=tmp / "indexes", quiet=True)
    return tmp / "indexes"
