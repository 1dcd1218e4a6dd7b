"""Fixtures of the code examples in README.md and docs/ (run by pytest-markdown-docs: `--markdown-docs` in
pyproject's pytest options). An example that needs the demo index says so in its fence's info string:

    ```python fixture:odqa_demo
    import odqa
    p = odqa.Pipeline.from_index("demo")
    ```
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("ODQA_QUIET", "1")


@dataclass(frozen=True)
class DemoHome:
    """The folder an example runs in: `indexes/demo` built from the bundled demo corpus, and the demo data as
    the files a user would have (`demo_corpus.jsonl`, `demo_questions.jsonl`)."""
    path: Path
    index_dir: Path
    corpus: Path
    questions: Path


@pytest.fixture(scope="session")
def odqa_demo_home(tmp_path_factory) -> DemoHome:
    """Built once per test run: the demo index (sparse, as `odqa demo` builds it) in a fresh folder."""
    import odqa
    from odqa.api.demo import demo_file

    home = tmp_path_factory.mktemp("odqa-home")
    corpus = Path(shutil.copy(demo_file("demo_corpus.jsonl"), home / "demo_corpus.jsonl"))
    questions = Path(shutil.copy(demo_file("demo_questions.jsonl"), home / "demo_questions.jsonl"))
    odqa.build_index(corpus, "demo", None, index_dir=home / "indexes", quiet=True)
    return DemoHome(home, home / "indexes", corpus, questions)


@pytest.fixture
def odqa_demo(odqa_demo_home: DemoHome, monkeypatch) -> DemoHome:
    """For one example: the working directory is the demo home and `ODQA_INDEX_DIR` its `indexes/`, so
    `odqa.Pipeline.from_index("demo")` and relative file names work as in a user's project folder (undone
    after the example; files the example writes stay in the home, shared by the examples of the run)."""
    monkeypatch.chdir(odqa_demo_home.path)
    monkeypatch.setenv("ODQA_INDEX_DIR", str(odqa_demo_home.index_dir))
    monkeypatch.setenv("ODQA_QUIET", "1")
    return odqa_demo_home
