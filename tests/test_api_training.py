"""The training API (odqa.api.training): typed requests checked before any work, typed results whose
`to_json()` is the object the CLI prints (the JSON table of docs/reference/json-output.md), defaults decided in one place."""

import dataclasses
import re
from pathlib import Path

import pytest

from odqa.api import training as api
from odqa.errors import ConfigError
from odqa.training import TrainConfig
from tests.conftest import squad_file
from tests.tiny_model import make_tiny_backbone

ROOT = Path(__file__).resolve().parents[1]
RESULTS = {"train reader": api.ReaderTrainResult, "train retriever": api.RetrieverTrainResult,
           "pretrain": api.PretrainResult, "re train": api.RETrainResult, "re evaluate": api.REEvaluateResult,
           "re predict": api.REPredictResult, "re export-text": api.REExportResult}


def readme_fields(command: str) -> tuple[list[str], bool]:
    """Top-level fields of `command`'s row in the JSON table of docs/reference/json-output.md (and whether it ends in `...`)."""
    row = re.search(rf"^\| `{re.escape(command)}` \| `\{{(.*)\}}` \|$", (ROOT / "docs" / "reference" / "json-output.md").read_text(encoding="utf-8"),
                    re.M).group(1)
    depth, top, cur = 0, [], ""
    for ch in row:
        depth += ch in "{["
        depth -= ch in "}]"
        if ch == "," and depth == 0:
            top.append(cur.strip())
            cur = ""
        else:
            cur += ch
    top.append(cur.strip())
    names = [t.split(":")[0].strip() for t in top]
    return [n for n in names if n != "..."], "..." in names


@pytest.mark.parametrize("command", sorted(RESULTS))
def test_results_carry_exactly_the_readme_json_fields(command):
    documented, open_ended = readme_fields(command)
    fields = [f.name for f in dataclasses.fields(RESULTS[command]) if f.name != "skipped_examples"]
    if open_ended:                      # `re evaluate`: the metrics, then per_label
        assert set(documented) <= set(fields) and fields[-1] == documented[-1]
    else:
        assert fields == documented


def test_requests_are_checked_before_any_work(tmp_path):
    out = tmp_path / "never"
    cases = [
        (lambda: api.ReaderTrainRequest(train_files=[], out=out), "config field 'train_files'"),
        (lambda: api.ReaderTrainRequest(train_files=["t.json"], out=out, train={"lr": -1}),
         "config field 'train.lr': input should be greater than 0, got -1"),
        (lambda: api.ReaderTrainRequest(train_files=["t.json"], out=out, negative_ratio=2),
         "config field 'negative_ratio'"),
        (lambda: api.ReaderTrainRequest(train_files=["t.json"], out=out, window={"max_length": 64, "stride": 64}),
         "0 <= stride < max_length"),
        (lambda: api.RetrieverTrainRequest(train_files=["t.json"], out=out, side="passage"),
         "config field 'side': input should be 'both' or 'query', got 'passage'"),
        (lambda: api.RetrieverTrainRequest(train_files=["t.json"], out=out, holdout=1.0), "config field 'holdout'"),
        (lambda: api.ParticlesTrainRequest(reader="r", train_files=["t.json"], analyzer="okt"), "config field 'analyzer'"),
        (lambda: api.PretrainRequest(corpus="c.jsonl", out=out, objective="mlm"), "config field 'objective'"),
        (lambda: api.PretrainRequest(corpus="c.jsonl", out=out, train={"grad_accum": 0}),
         "config field 'train.grad_accum'"),
        (lambda: api.re_train_request("t.json", out, lr=0), "config field 'train.lr'"),
        (lambda: api.RETrainRequest(train_file="t.json", pooling="max"), "config field 'pooling'"),
        (lambda: api.REEvaluateRequest(model="m", data="d", batch_size=0), "config field 'batch_size'"),
        (lambda: api.REPredictRequest(model="m", data="d", out="p.xml", format="xml"), "config field 'format'"),
        (lambda: api.REExportRequest(train_files=["t.json"], out="x.jsonl", no_relation_keep=1.5),
         "config field 'no_relation_keep'"),
        (lambda: api.REExportRequest(train_files=["t.json"], out="x.jsonl", keep=0.5), "unknown config field 'keep'"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigError) as e:
            make()
        assert message in str(e.value) and len(str(e.value).splitlines()) == 1, (message, str(e.value))
    assert not out.exists()


def test_the_retriever_defaults_are_decided_once(tmp_path):
    from transformers import AutoModel
    model = AutoModel.from_pretrained(str(make_tiny_backbone(tmp_path / "b6", layers=6)))
    decided = api.retriever_defaults(api.RetrieverTrainConfig(backbone="klue/bert-base"), model)
    assert (decided.temperature, decided.freeze_layers) == (0.05, 2)       # a third of 6 layers; not an e5 model
    e5 = api.retriever_defaults(api.RetrieverTrainConfig(), model)
    assert e5.temperature == 0.01
    kept = api.retriever_defaults(api.RetrieverTrainConfig(temperature=0.2, freeze_layers=0), model)
    assert (kept.temperature, kept.freeze_layers) == (0.2, 0)
    assert api.RetrieverTrainConfig().train.lr == 1e-5 and api.ReaderConfig().train.lr == 1e-4


def test_train_reader_and_particles_through_typed_requests(tmp_path, tiny):
    train = squad_file(tmp_path / "train.json")
    window = {"max_length": 48, "stride": 16}
    res = api.train_reader(api.ReaderTrainRequest(train_files=[train], dev=train, out=tmp_path / "run",
                                                 backbone=str(tiny), window=window,
                                                 train=TrainConfig(lr=3e-3, max_steps=2, batch_size=4)))
    assert isinstance(res, api.ReaderTrainResult) and res.steps == 2 and res.metric == "f1"
    assert res.train_questions == 9 and res.to_json()["out"] == str(tmp_path / "run" / "best")
    assert "skipped_examples" not in res.to_json()
    # without dev questions the run keeps the lowest training loss
    no_dev = api.train_reader(api.ReaderTrainRequest(backbone=str(tiny), window=window, train_files=[train],
                                                    out=tmp_path / "run2",
                                                    train=TrainConfig(lr=3e-3, max_steps=1, batch_size=4)))
    assert no_dev.metric == "loss" and no_dev.dev_questions == 0 and no_dev.steps == 1
    learned = api.train_particles(api.ParticlesTrainRequest(reader=tmp_path / "run" / "best", train_files=[train], limit=5))
    assert isinstance(learned, api.ParticlesTrainResult) and learned.questions == 5 and learned.examples <= 5
    assert learned.out == str(tmp_path / "run" / "best" / "particles.json") and Path(learned.out).exists()
    assert learned.train_em_after >= learned.train_em_before
    with pytest.raises(ConfigError, match="config field 'side': input should be 'both' or 'query'"):
        api.RetrieverTrainRequest(train_files=[train], out=tmp_path / "r", side="passage")
