"""Tiny-model end to end: odqa re train -> save -> load -> evaluate -> predict, through the CLI."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from odqa.cli.main import app
from odqa.errors import OdqaError
from odqa.relation.data import KLUE_RE_LABELS
from tests.test_relation import records, write_boostcamp_csv, write_json, write_labels
from tests.tiny_model import make_tiny_backbone


def run(*args, fail=False):
    res = CliRunner().invoke(app, [str(a) for a in args], env={"ODQA_QUIET": "1"})
    if fail:
        assert res.exit_code != 0
        return res
    if res.exit_code != 0:
        raise AssertionError(f"odqa {args} failed: {res.exception!r}\n{res.output}") from res.exception
    return res


def run_json(*args):
    out = run(*args, "--json").stdout
    return json.loads(out[out.index("{"):])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("re")
    write_labels(d / "relation_list.json")
    return {"dir": d, "tiny": make_tiny_backbone(d / "tiny"), "train": write_json(d / "train.json", records(40)),
            "dev": write_json(d / "dev.json", records(16)),
            "test": write_boostcamp_csv(d / "test.csv", records(), label=100)}


def test_train_save_load_evaluate_predict(setup):
    d = setup["dir"]
    out = d / "run"
    common = ["--train", setup["train"], "--dev", setup["dev"], "--backbone", setup["tiny"], "--out", out,
              "--batch-size", "8", "--eval-every", "2", "--max-length", "48"]
    rep = run_json("re", "train", *common, "--max-steps", "4")
    assert rep["steps"] == 4 and rep["train_examples"] == 40 and rep["dev_examples"] == 16
    assert rep["stopped"] == "max_steps" and set(rep["best"]) >= {"micro_f1", "auprc"}
    best = out / "best"
    meta = json.loads((best / "odqa_head.json").read_text(encoding="utf-8"))
    rel = meta["extra"]["relation"]
    assert rel["labels"] == KLUE_RE_LABELS and (rel["markers"], rel["pooling"], rel["max_length"]) == (
        "typed", "entity_start", 48)
    assert meta["head_kwargs"]["num_labels"] == 30

    # evaluate needs no flags and reproduces the dev scores of the saved (best) step
    ev = run_json("re", "evaluate", "--model", best, "--data", setup["dev"])
    assert ev["examples"] == 16
    assert ev["micro_f1"] == pytest.approx(rep["best"]["micro_f1"], abs=1e-3)
    assert ev["auprc"] == pytest.approx(rep["best"]["auprc"], abs=1e-3)
    assert sum(v["support"] for v in ev["per_label"].values()) == 16
    assert "micro-F1" in run("re", "evaluate", "--model", best, "--data", setup["dev"]).stdout

    # predict: the submission CSV from a Boostcamp test CSV (dummy label 100), and the JSON variant
    pred = d / "submission.csv"
    rp = run_json("re", "predict", "--model", best, "--data", setup["test"], "--out", pred)
    assert rp["predictions"] == 8 and rp["format"] == "csv"
    with open(pred, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [str(i) for i in range(8)] and set(rows[0]) == {"id", "pred_label", "probs"}
    probs = np.array([json.loads(r["probs"]) for r in rows])
    assert probs.shape == (8, 30) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert [r["pred_label"] for r in rows] == [KLUE_RE_LABELS[i] for i in probs.argmax(1)]
    pj = d / "pred.json"
    run("re", "predict", "--model", best, "--data", setup["dev"], "--out", pj)
    js = json.loads(pj.read_text(encoding="utf-8"))
    assert js["labels"] == KLUE_RE_LABELS and len(js["predictions"]) == 16 and js["predictions"][0]["id"] == "re-0"

    # resume continues to more steps with the same settings, and refuses other settings
    again = run_json("re", "train", *common, "--max-steps", "6", "--resume")
    assert again["steps"] == 6
    bad = run("re", "train", *common, "--max-steps", "8", "--resume", "--markers", "none", fail=True)
    assert isinstance(bad.exception, OdqaError) and "markers 'typed' (asked 'none')" in str(bad.exception)


def test_checkpoint_with_another_label_set_is_refused(setup):
    d = setup["dir"]
    out = d / "run2"
    run("re", "train", "--train", setup["train"], "--backbone", setup["tiny"], "--out", out, "--batch-size", "8",
        "--max-steps", "1", "--max-length", "32", "--json")
    other = write_labels(d / "other_labels.json", KLUE_RE_LABELS[:29] + ["per:hobby"])
    res = run("re", "evaluate", "--model", out / "best", "--data", setup["dev"], "--labels", other, fail=True)
    assert "another label set" in str(res.exception) and "per:title" in str(res.exception)
    # data with a label the checkpoint does not know: named in the error
    rows = records(4)
    rows[2]["label"] = "per:hobby"
    res = run("re", "evaluate", "--model", out / "best", "--data", write_json(d / "odd.json", rows), fail=True)
    assert "odd.json: record 2 (re-2): unknown label 'per:hobby'" in str(res.exception)


def test_hierarchical_e1_focal_undersampled_run(setup):
    d = setup["dir"]
    out = d / "run_h"
    rep = run_json("re", "train", "--train", setup["train"], "--dev", setup["dev"], "--backbone", setup["tiny"],
                   "--out", out, "--batch-size", "8", "--max-steps", "2", "--max-length", "48", "--hierarchical",
                   "--markers", "e1", "--loss", "focal", "--no-relation-keep", "0.5", "--pooling", "entity_start",
                   "--train-embeddings")
    assert rep["examples_per_epoch"] == 40 - 10 and rep["config"]["hierarchical"] is True
    meta = json.loads((out / "best" / "odqa_head.json").read_text(encoding="utf-8"))
    assert meta["head_kwargs"]["num_labels"] == 33 and meta["extra"]["relation"]["markers"] == "e1"
    tok = json.loads((out / "best" / "tokenizer.json").read_text(encoding="utf-8"))
    assert {"[E1]", "[/E2]"} <= {t["content"] for t in tok["added_tokens"]}
    pj = d / "pred_h.json"
    run("re", "predict", "--model", out / "best", "--data", setup["dev"], "--out", pj)
    preds = json.loads(pj.read_text(encoding="utf-8"))["predictions"]
    probs = np.array([p["probs"] for p in preds])
    assert probs.shape == (16, 30) and np.allclose(probs.sum(1), 1, atol=1e-4)
    family = {lab: lab.split(":")[0] for lab in KLUE_RE_LABELS}
    for p, row in zip(preds, probs):                     # the label comes from the most probable family
        mass = {f: sum(row[i] for i, lab in enumerate(KLUE_RE_LABELS) if family[lab] == f)
                for f in ("no_relation", "org", "per")}
        assert family[p["pred_label"]] == max(mass, key=mass.get)
    ev = run_json("re", "evaluate", "--model", out / "best", "--data", setup["dev"])
    assert 0 <= ev["micro_f1"] <= 100 and 0 <= ev["auprc"] <= 100


def test_export_text_for_pretraining(setup):
    d = setup["dir"]
    rep = run_json("re", "export-text", "--train", setup["train"], "--out", d / "text.jsonl",
                   "--undersample-no-relation", "0.0")
    lines = [json.loads(x) for x in (d / "text.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rep["records"] == 40 - 20 and rep["sentences"] == len(lines) == 4    # the 4 distinct relation sentences
    assert all(set(x) == {"id", "title", "text"} for x in lines)
    all_rep = run_json("re", "export-text", "--train", setup["train"], "--out", d / "all.jsonl")
    assert all_rep["sentences"] == 8


def test_help_has_examples():
    for cmd in ("train", "evaluate", "predict", "export-text"):
        assert "Example: odqa re " + cmd in run("re", cmd, "--help").stdout.replace("\n", " ").replace("  ", " ")


def test_stop_after_keeps_the_epoch_schedule(setup):
    out = setup["dir"] / "run-stop"
    rep = run_json("re", "train", "--train", setup["train"], "--backbone", setup["tiny"], "--out", out,
                   "--batch-size", "8", "--epochs", "2", "--stop-after", "3", "--max-length", "32")
    assert rep["steps"] == 3 and rep["stopped"] == "stop_after" and rep["config"]["stop_after"] == 3
    # the learning rate at step 3 is that of the 2-epoch schedule (10 steps), not a 3-step one
    row = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()][-1]
    assert row["step"] == 3 and row["lr"] > 0
