"""Tiny-model end to end: train -> save -> load -> evaluate -> predict, through the API (odqa.api.training);
one test drives `odqa re ...` itself (flags, exit codes, --json)."""

import csv
import json

import numpy as np
import pytest

from odqa.api.training import (REEvaluateRequest, REExportRequest, REPredictRequest, RETrainResult, evaluate_re,
                               export_re_text, predict_re, re_train_request, train_re)
from odqa.errors import ConfigError, ModelError, OdqaError
from odqa.relation.data import KLUE_RE_LABELS
from tests.test_cli import odqa
from tests.test_relation import records, write_boostcamp_csv, write_json, write_labels
from tests.tiny_model import make_tiny_backbone


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("re")
    write_labels(d / "relation_list.json")
    return {"dir": d, "tiny": make_tiny_backbone(d / "tiny"), "train": write_json(d / "train.json", records(40)),
            "dev": write_json(d / "dev.json", records(16)),
            "test": write_boostcamp_csv(d / "test.csv", records(), label=100)}


def request(setup, out, **flags):
    """What `odqa re train --train T [--dev D] --backbone TINY --out OUT --batch-size 8 ...` asks for."""
    dev = flags.pop("dev", setup["dev"])
    resume = flags.pop("resume", False)
    return re_train_request(setup["train"], out, dev, resume=resume, backbone=str(setup["tiny"]),
                            **{"batch_size": 8, **flags})


def test_train_save_load_evaluate_predict(setup):
    d = setup["dir"]
    out = d / "run"
    common = dict(eval_every=2, max_length=48)
    res = train_re(request(setup, out, max_steps=4, **common))
    assert isinstance(res, RETrainResult) and res.steps == 4 and res.train_examples == 40 and res.dev_examples == 16
    assert res.stopped == "max_steps" and set(res.best) >= {"micro_f1", "auprc"}
    rep = res.to_json()
    assert rep["config"]["max_steps"] == 4 and rep["config"]["train"]["max_steps"] == 4   # flat layout + train
    best = out / "best"
    meta = json.loads((best / "odqa_head.json").read_text(encoding="utf-8"))
    rel = meta["extra"]["relation"]
    assert rel["labels"] == KLUE_RE_LABELS and (rel["markers"], rel["pooling"], rel["max_length"]) == (
        "typed", "entity_start", 48)
    assert meta["head_kwargs"]["num_labels"] == 30

    # evaluate needs no flags and reproduces the dev scores of the saved (best) step
    ev = evaluate_re(REEvaluateRequest(model=best, data=setup["dev"]))
    assert ev.examples == 16
    assert ev.micro_f1 == pytest.approx(res.best["micro_f1"], abs=1e-3)
    assert ev.auprc == pytest.approx(res.best["auprc"], abs=1e-3)
    assert sum(v["support"] for v in ev.per_label.values()) == 16

    # predict: the submission CSV from a Boostcamp test CSV (dummy label 100), and the JSON variant
    pred = d / "submission.csv"
    rp = predict_re(REPredictRequest(model=best, data=setup["test"], out=pred))
    assert rp.predictions == 8 and rp.format == "csv"
    with open(pred, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [str(i) for i in range(8)] and set(rows[0]) == {"id", "pred_label", "probs"}
    probs = np.array([json.loads(r["probs"]) for r in rows])
    assert probs.shape == (8, 30) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert [r["pred_label"] for r in rows] == [KLUE_RE_LABELS[i] for i in probs.argmax(1)]
    pj = d / "pred.json"
    predict_re(REPredictRequest(model=best, data=setup["dev"], out=pj))
    js = json.loads(pj.read_text(encoding="utf-8"))
    assert js["labels"] == KLUE_RE_LABELS and len(js["predictions"]) == 16 and js["predictions"][0]["id"] == "re-0"

    # resume continues to more steps with the same settings, and refuses other settings
    again = train_re(request(setup, out, max_steps=6, resume=True, **common))
    assert again.steps == 6
    with pytest.raises(ModelError, match="markers 'typed' \\(asked 'none'\\)"):
        train_re(request(setup, out, max_steps=8, resume=True, markers="none", **common))
    with pytest.raises(ModelError, match="cannot resume: no checkpoint at"):
        train_re(request(setup, d / "never", max_steps=1, resume=True))


def test_a_shipped_re_model_is_found_by_name_and_is_the_default(setup, tmp_path, monkeypatch):
    from odqa.modeling.compact import pack
    out = setup["dir"] / "run-ship"
    train_re(request(setup, out, max_steps=2, max_length=48))
    own = evaluate_re(REEvaluateRequest(model=str(out / "best"), data=setup["dev"]))
    models = tmp_path / "models"
    pack(out / "best", models / "ko-re", str(setup["tiny"]), "fp32")
    (models / "ko-re" / "card.json").write_text(json.dumps({"kind": "re", "licence": "CC BY-SA 4.0"}))
    monkeypatch.setenv("ODQA_MODELS_DIR", str(models))
    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    by_name = evaluate_re(REEvaluateRequest(model="ko-re", data=setup["dev"]))
    default = json.loads(odqa("re", "evaluate", "--data", setup["dev"], "--json", cwd=tmp_path).stdout)
    assert by_name.micro_f1 == own.micro_f1 and by_name.auprc == pytest.approx(own.auprc, abs=1e-6)
    assert default["model"] == "ko-re" and default["auprc"] == pytest.approx(own.auprc, abs=1e-4)
    with pytest.raises(ModelError, match="ko-ree: no such checkpoint folder or shipped model \\(ko-re\\)"):
        evaluate_re(REEvaluateRequest(model="ko-ree", data=setup["dev"]))


def test_checkpoint_with_another_label_set_is_refused(setup):
    d = setup["dir"]
    out = d / "run2"
    train_re(request(setup, out, dev=None, max_steps=1, max_length=32))
    other = write_labels(d / "other_labels.json", KLUE_RE_LABELS[:29] + ["per:hobby"])
    with pytest.raises(ModelError, match="another label set.*per:title"):
        evaluate_re(REEvaluateRequest(model=out / "best", data=setup["dev"], labels=other))
    # data with a label the checkpoint does not know: named in the error
    rows = records(4)
    rows[2]["label"] = "per:hobby"
    with pytest.raises(OdqaError, match="odd.json: record 2 \\(re-2\\): unknown label 'per:hobby'"):
        evaluate_re(REEvaluateRequest(model=out / "best", data=write_json(d / "odd.json", rows)))


def test_hierarchical_e1_focal_undersampled_run(setup):
    d = setup["dir"]
    out = d / "run_h"
    res = train_re(request(setup, out, max_steps=2, max_length=48, hierarchical=True, markers="e1", loss="focal",
                           no_relation_keep=0.5, pooling="entity_start", freeze_embeddings=False))
    assert res.examples_per_epoch == 40 - 10 and res.config["hierarchical"] is True
    meta = json.loads((out / "best" / "odqa_head.json").read_text(encoding="utf-8"))
    assert meta["head_kwargs"]["num_labels"] == 33 and meta["extra"]["relation"]["markers"] == "e1"
    tok = json.loads((out / "best" / "tokenizer.json").read_text(encoding="utf-8"))
    assert {"[E1]", "[/E2]"} <= {t["content"] for t in tok["added_tokens"]}
    pj = d / "pred_h.json"
    predict_re(REPredictRequest(model=out / "best", data=setup["dev"], out=pj))
    preds = json.loads(pj.read_text(encoding="utf-8"))["predictions"]
    probs = np.array([p["probs"] for p in preds])
    assert probs.shape == (16, 30) and np.allclose(probs.sum(1), 1, atol=1e-4)
    family = {lab: lab.split(":")[0] for lab in KLUE_RE_LABELS}
    for p, row in zip(preds, probs):                     # the label comes from the most probable family
        mass = {f: sum(row[i] for i, lab in enumerate(KLUE_RE_LABELS) if family[lab] == f)
                for f in ("no_relation", "org", "per")}
        assert family[p["pred_label"]] == max(mass, key=mass.get)
    ev = evaluate_re(REEvaluateRequest(model=out / "best", data=setup["dev"]))
    assert 0 <= ev.micro_f1 <= 100 and 0 <= ev.auprc <= 100


def test_export_text_for_pretraining(setup):
    d = setup["dir"]
    rep = export_re_text(REExportRequest(train_files=[setup["train"]], out=d / "text.jsonl", no_relation_keep=0.0))
    lines = [json.loads(x) for x in (d / "text.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rep.records == 40 - 20 and rep.sentences == len(lines) == 4    # the 4 distinct relation sentences
    assert all(set(x) == {"id", "title", "text"} for x in lines)
    assert export_re_text(REExportRequest(train_files=[setup["train"]], out=d / "all.jsonl")).sentences == 8


def test_stop_after_keeps_the_epoch_schedule(setup):
    out = setup["dir"] / "run-stop"
    res = train_re(request(setup, out, dev=None, epochs=2, stop_after=3, max_length=32))
    assert res.steps == 3 and res.stopped == "stop_after" and res.config["stop_after"] == 3
    # the learning rate at step 3 is that of the 2-epoch schedule (10 steps), not a 3-step one
    row = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()][-1]
    assert row["step"] == 3 and row["lr"] > 0


def test_request_merges_yaml_then_set_then_flags(setup, tmp_path):
    f = tmp_path / "re.yaml"
    f.write_text("loss: focal\ntrain:\n  lr: 0.0002\n  seed: 5\n")
    req = re_train_request(setup["train"], tmp_path / "o", config=f, overrides=["train.seed=6", "epochs=4"],
                           lr=0.0003, patience=2, markers=None)
    assert (req.loss, req.train.lr, req.train.seed, req.train.epochs, req.train.early_stopping_patience) == (
        "focal", 3e-4, 6, 4, 2)
    assert req.markers == "typed"                          # a flag left unset keeps the config's value
    with pytest.raises(ConfigError, match="config field 'train.batch_size': input should be greater than or equal to 1"):
        re_train_request(setup["train"], tmp_path / "o", batch_size=0)


def test_cli_wiring_flags_exit_codes_and_json(setup, tmp_path):
    """`odqa re ...`: flags reach the API, --json prints the result, errors are one line with their exit code."""
    d = setup["dir"]
    out = tmp_path / "cli-run"
    p = odqa("re", "train", "--train", setup["train"], "--dev", setup["dev"], "--backbone", setup["tiny"], "--out", out,
             "--batch-size", "8", "--max-steps", "2", "--max-length", "32", "--set", "loss=focal", "--lr", "0.001",
             "--json", cwd=tmp_path)
    rep = json.loads(p.stdout)
    assert set(rep) >= {"out", "train_examples", "train_skipped", "examples_per_epoch", "train_truncated",
                        "dev_examples", "dev_skipped", "best_step", "steps", "epochs_done", "stopped", "minutes",
                        "best", "config"}
    assert rep["steps"] == 2 and rep["config"]["loss"] == "focal" and rep["config"]["lr"] == 0.001
    assert "model saved to" in odqa("re", "train", "--train", setup["train"], "--backbone", setup["tiny"], "--out",
                                    tmp_path / "text-run", "--batch-size", "8", "--max-steps", "1", "--max-length",
                                    "32", cwd=tmp_path).stdout
    ev = json.loads(odqa("re", "evaluate", "--model", out / "best", "--data", setup["dev"], "--json", cwd=tmp_path).stdout)
    assert ev["examples"] == 16 and set(ev) >= {"model", "data", "skipped", "truncated", "seconds", "micro_f1", "auprc",
                                                "accuracy", "loss", "per_label"}
    assert "micro-F1" in odqa("re", "evaluate", "--model", out / "best", "--data", setup["dev"], cwd=tmp_path).stdout
    rp = json.loads(odqa("re", "predict", "--model", out / "best", "--data", setup["test"], "--out", tmp_path / "s.csv",
                         "--json", cwd=tmp_path).stdout)
    assert set(rp) == {"out", "format", "predictions", "skipped", "predicted_labels"} and rp["format"] == "csv"
    ex = json.loads(odqa("re", "export-text", "--train", setup["train"], "--out", tmp_path / "t.jsonl", "--json",
                         cwd=tmp_path).stdout)
    assert set(ex) == {"out", "records", "sentences", "no_relation_keep"} and ex["sentences"] == 8
    for cmd in ("train", "evaluate", "predict", "export-text"):
        help_text = odqa("re", cmd, "--help", cwd=tmp_path).stdout.replace("\n", " ").replace("  ", " ")
        assert "Example: odqa re " + cmd in help_text
    bad = odqa("re", "train", "--train", setup["train"], "--out", tmp_path / "x", "--markers", "xml", cwd=tmp_path,
               check=False)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("odqa: error: config field 'markers'")
    assert len(bad.stderr.strip().splitlines()) == 1
    other = write_labels(d / "other_labels_cli.json", KLUE_RE_LABELS[:29] + ["per:hobby"])
    refused = odqa("re", "evaluate", "--model", out / "best", "--data", setup["dev"], "--labels", other, cwd=tmp_path,
                   check=False)
    assert refused.returncode == ModelError.exit_code and "another label set" in refused.stderr
