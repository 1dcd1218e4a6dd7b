import json

from odqa.config import IndexConfig, apply_overrides
from odqa.retrieval.indexing import build_index, load_index
from tests.conftest import PASSAGES, QUESTIONS
from tests.test_cli import odqa
from tests.tiny_model import make_tiny_backbone


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
