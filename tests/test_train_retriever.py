import json

from odqa.config import IndexConfig, apply_overrides
from odqa.retrieval.indexing import build_index, load_index
from tests.conftest import squad_file
from tests.test_cli import odqa
from tests.tiny_model import make_tiny_backbone


def test_train_retriever_then_index_with_it(tmp_path, corpus_file, index_root):
    tiny = make_tiny_backbone(tmp_path / "enc")
    train = squad_file(tmp_path / "train.json")
    out = tmp_path / "run"
    rep = json.loads(odqa("train", "retriever", "--train", train, "--out", out, "--backbone", tiny,
                          "--max-steps", "4", "--batch-size", "4", "--eval-every", "2", "--max-length", "32",
                          "--holdout", "0.3", "--json", cwd=tmp_path).stdout)
    assert rep["steps"] == 4 and (rep["train_questions"], rep["heldout_questions"]) == (7, 2)
    assert 0 <= rep["best_metric"] <= 1 and set(rep["heldout_before"]) == {"recall@1", "recall@5"}
    best = out / "best"
    assert (best / "config.json").exists() and (best / "tokenizer.json").exists()
    assert json.loads((best / "odqa_retriever.json").read_text())["base_backbone"] == str(tiny)
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={best}"])
    build_index(corpus_file, "ft", cfg, index_root)
    assert load_index("ft", index_root).retriever("dense").search(["한라산"], 2)[0]
    again = json.loads(odqa("train", "retriever", "--train", train, "--out", out, "--backbone", tiny,
                            "--max-steps", "6", "--batch-size", "4", "--max-length", "32", "--holdout", "0.3",
                            "--resume", "--json",
                            cwd=tmp_path).stdout)
    assert again["steps"] == 6
