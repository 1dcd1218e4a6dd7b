import csv
import dataclasses
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from odqa.config import load_config
from odqa.errors import ConfigError, OdqaError
from odqa.relation.data import (KLUE_RE_LABELS, Entity, REExample, export_text, load_labels, load_re,
                                undersample_no_relation)
from odqa.relation.markers import mark
from odqa.relation.metrics import auprc, micro_f1, re_metrics

ROOT = Path(__file__).resolve().parents[1]

# (sentence, subject (word, start, type), object (word, start, type), label)
SENTENCES = [
    ("이순신은 조선 중기의 무신이다.", ("이순신", 0, "PER"), ("조선", 5, "ORG"), "per:employee_of"),
    ("세종대왕은 훈민정음을 창제하였다.", ("세종대왕", 0, "PER"), ("훈민정음", 6, "POH"), "per:product"),
    ("삼성전자의 이재용 회장이 참석했다.", ("삼성전자", 0, "ORG"), ("이재용", 6, "PER"), "org:top_members/employees"),
    ("지리산의 최고봉은 천왕봉이다.", ("천왕봉", 10, "LOC"), ("지리산", 0, "LOC"), "no_relation"),
    ("김치는 한국의 전통 음식이다.", ("김치", 0, "POH"), ("한국", 4, "LOC"), "no_relation"),
    ("한라산은 제주도에 있는 산이다.", ("한라산", 0, "LOC"), ("제주도", 5, "LOC"), "no_relation"),
    ("백록담은 한라산 정상에 있다.", ("한라산", 5, "LOC"), ("백록담", 0, "LOC"), "no_relation"),
    ("홍길동의 아버지는 홍판서이다.", ("홍길동", 0, "PER"), ("홍판서", 10, "PER"), "per:parents"),
]


def record(i, sentence, subj, obj, label):
    def ent(w, s, t):
        assert sentence[s:s + len(w)] == w, (sentence, w)
        return {"word": w, "start_idx": s, "end_idx": s + len(w) - 1, "type": t}
    return {"guid": f"re-{i}", "sentence": sentence, "subject_entity": ent(*subj), "object_entity": ent(*obj),
            "label": label, "source": "test"}


def records(n=None):
    rows = [record(i, *s) for i, s in enumerate(SENTENCES)]
    return rows if n is None else [dict(r, guid=f"re-{k}") for k, r in
                                   zip(range(n), (rows[k % len(rows)] for k in range(n)))]


def write_json(path, rows):
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def write_labels(path, labels=KLUE_RE_LABELS):
    path.write_text(json.dumps({"relations": labels}), encoding="utf-8")
    return path


def write_boostcamp_csv(path, rows, label=None):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sentence", "subject_entity", "object_entity", "label", "source"])
        for i, r in enumerate(rows):
            w.writerow([i, r["sentence"], repr(r["subject_entity"]), repr(r["object_entity"]),
                        label if label is not None else r["label"], r["source"]])
    return path


# ------------------------------------------------------------------ markers


def test_typed_markers_subject_first_and_object_first():
    s = "이순신은 조선의 무신이다."
    person, country = Entity("이순신", 0, 2, "PER"), Entity("조선", 5, 6, "ORG")
    m = mark(s, person, country, "typed")
    assert m.text == "@ * PER * 이순신 @은 # ^ ORG ^ 조선 #의 무신이다."
    assert m.text[m.subject.word_start:m.subject.word_end + 1] == "이순신"
    assert m.text[m.object.word_start:m.object.word_end + 1] == "조선"
    assert m.text[m.subject.open_start:m.subject.close_end + 1] == "@ * PER * 이순신 @"
    assert m.text[m.object.open_start:m.object.close_end + 1] == "# ^ ORG ^ 조선 #"
    assert [m.text[a] for a in m.anchors()] == ["@", "#"]
    # the object comes first in the sentence: subject still gets @, object #
    r = mark(s, country, person, "typed")
    assert r.text == "# ^ PER ^ 이순신 #은 @ * ORG * 조선 @의 무신이다."
    assert r.text[r.subject.word_start:r.subject.word_end + 1] == "조선"
    assert r.text[r.object.word_start:r.object.word_end + 1] == "이순신"
    assert [r.text[a] for a in r.anchors()] == ["@", "#"] and r.anchors()[0] > r.anchors()[1]


def test_e1_and_unmarked_styles_keep_offsets():
    s = "백록담은 한라산 정상에 있다."
    lake, mountain = Entity("백록담", 0, 2, "LOC"), Entity("한라산", 5, 7, "LOC")
    m = mark(s, mountain, lake, "e1")
    assert m.text == "[E2] 백록담 [/E2]은 [E1] 한라산 [/E1] 정상에 있다."
    assert m.text[m.subject.open_start:m.subject.close_end + 1] == "[E1] 한라산 [/E1]"
    assert m.text[m.object.word_start:m.object.word_end + 1] == "백록담"
    n = mark(s, mountain, lake, "none")
    assert n.text == s and n.anchors() == (5, 0)
    assert (n.subject.word_start, n.subject.word_end, n.object.word_end) == (5, 7, 2)
    with pytest.raises(OdqaError, match="marker style 'xml' unknown"):
        mark(s, mountain, lake, "xml")


def test_markers_on_random_spans_adjacent_and_nested():
    rng = random.Random(0)
    text = "가나다라마바사아자차카타파하" * 3
    for _ in range(300):
        a, b = sorted(rng.sample(range(len(text)), 2))
        c = rng.randrange(b, len(text))
        d = rng.randrange(c, len(text))
        e1, e2 = Entity(text[a:b], a, b - 1, "PER"), Entity(text[c:d + 1], c, d, "ORG")
        for subj, obj in ((e1, e2), (e2, e1)):
            for style in ("typed", "e1", "none"):
                m = mark(text, subj, obj, style)
                for sp, ent in ((m.subject, subj), (m.object, obj)):
                    assert m.text[sp.word_start:sp.word_end + 1] == ent.word
                    assert sp.open_start <= sp.word_start and sp.close_end >= sp.word_end
    # nested: the object inside the subject's span
    s = "대한민국 국회의사당"
    outer, inner = Entity("대한민국 국회의사당", 0, 9, "ORG"), Entity("국회", 5, 6, "ORG")
    m = mark(s, outer, inner, "typed")
    assert m.text == "@ * ORG * 대한민국 # ^ ORG ^ 국회 #의사당 @"
    assert m.text[m.object.word_start:m.object.word_end + 1] == "국회"
    assert m.text[m.subject.open_start] == "@" and m.text[m.subject.close_end] == "@"


# --------------------------------------------------------------------- data


def test_load_official_json_and_boostcamp_csv_alike(tmp_path):
    rows = records()
    js = load_re(write_json(tmp_path / "re.json", rows), KLUE_RE_LABELS)
    cs = load_re(write_boostcamp_csv(tmp_path / "re.csv", rows), KLUE_RE_LABELS)
    assert len(js.examples) == len(cs.examples) == len(rows) and not js.skipped and not cs.skipped
    for a, b in zip(js.examples, cs.examples):
        assert (a.sentence, a.subject, a.object, a.label) == (b.sentence, b.subject, b.object, b.label)
    ex = js.examples[2]
    assert ex.id == "re-2" and ex.subject == Entity("삼성전자", 0, 3, "ORG") and ex.object.word == "이재용"
    assert cs.examples[2].id == "2"
    jl = tmp_path / "re.jsonl"
    jl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [e.subject for e in load_re(jl).examples] == [e.subject for e in js.examples]
    # a test CSV with Boostcamp's dummy label 100 loads for prediction
    test = load_re(write_boostcamp_csv(tmp_path / "test.csv", rows, label=100), require_labels=False)
    assert len(test.examples) == len(rows) and all(e.label is None for e in test.examples)


def test_bad_offsets_are_skipped_and_counted(tmp_path, caplog):
    rows = records()
    rows[1]["subject_entity"]["start_idx"] += 1          # selects the wrong characters
    rows[4]["object_entity"]["end_idx"] = 500            # outside the sentence
    data = load_re(write_json(tmp_path / "re.json", rows), KLUE_RE_LABELS)
    assert len(data.examples) == len(rows) - 2 and len(data.skipped) == 2
    (w1, why1), (w2, why2) = data.skipped
    assert "re-1" in w1 and "subject_entity" in why1 and "'세종대왕'" in why1
    assert "re-4" in w2 and "outside the sentence" in why2
    assert "re-1" in caplog.text
    csv_data = load_re(write_boostcamp_csv(tmp_path / "re.csv", rows), KLUE_RE_LABELS)
    assert len(csv_data.skipped) == 2 and "line 3" in csv_data.skipped[0][0]


def test_unknown_label_and_malformed_records_are_one_line_errors(tmp_path):
    rows = records()
    rows[3]["label"] = "per:favourite_food"
    path = write_json(tmp_path / "re.json", rows)
    with pytest.raises(OdqaError, match=r"re\.json: record 3 \(re-3\): unknown label 'per:favourite_food'"):
        load_re(path, KLUE_RE_LABELS)
    rows = records()
    rows[2]["subject_entity"] = "{'word': '삼성전자'"
    with pytest.raises(OdqaError, match=r"record 2 \(re-2\): subject_entity is not a dict string"):
        load_re(write_json(tmp_path / "bad.json", rows), KLUE_RE_LABELS)
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    with pytest.raises(OdqaError, match="broken.json: invalid JSON"):
        load_re(tmp_path / "broken.json")
    with pytest.raises(OdqaError, match="first label must be 'no_relation'"):
        load_labels(write_labels(tmp_path / "l.json", ["per:title", "no_relation"]))
    assert load_labels(write_labels(tmp_path / "k.json")) == KLUE_RE_LABELS == load_labels(None)


def test_undersampling_and_export_text(tmp_path):
    ex = load_re(write_json(tmp_path / "re.json", records(40)), KLUE_RE_LABELS).examples
    neg = sum(e.label == "no_relation" for e in ex)
    kept = undersample_no_relation(ex, 0.5, seed=1)
    assert sum(e.label == "no_relation" for e in kept) == round(neg / 2)
    assert [e for e in kept if e.label != "no_relation"] == [e for e in ex if e.label != "no_relation"]
    assert undersample_no_relation(ex, 0.5, seed=1) == kept != undersample_no_relation(ex, 0.5, seed=2)
    n = export_text(kept, tmp_path / "corpus.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert n == len(lines) == len({e.sentence for e in kept}) and set(lines[0]) == {"id", "title", "text"}
    assert {x["text"] for x in lines} == {e.sentence for e in kept}


# ------------------------------------------------------------------ metrics


def _klue_reference(gold, probs):
    """KLUE's klue_re_micro_f1 / klue_re_auprc, written with scikit-learn as KLUE does."""
    from sklearn.metrics import auc, f1_score, precision_recall_curve
    f1 = f1_score(gold, probs.argmax(1), average="micro", labels=list(range(1, probs.shape[1]))) * 100
    onehot = np.eye(probs.shape[1])[gold]
    scores = []
    for c in range(probs.shape[1]):
        precision, recall, _ = precision_recall_curve(onehot[:, c], probs[:, c])
        scores.append(auc(recall, precision))
    return f1, float(np.mean(scores)) * 100


@pytest.mark.parametrize("seed", range(6))
def test_metrics_equal_klue_reference_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    n = 300
    gold = rng.choice(30, n, p=np.r_[0.3, np.full(29, 0.7 / 29)])
    if seed == 2:
        gold[gold == 7] = 8                       # a label without positives
    logits = rng.normal(size=(n, 30))
    logits[np.arange(n), gold] += rng.uniform(0, 3)
    if seed % 2:
        logits = np.round(logits, 1)              # ties in the scores
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1_ref, auprc_ref = _klue_reference(gold, probs)
    m = re_metrics(gold, probs)
    assert m["micro_f1"] == pytest.approx(f1_ref, abs=1e-9)
    assert m["auprc"] == pytest.approx(auprc_ref, abs=1e-9)
    assert micro_f1(gold, gold) == 100.0 and auprc(gold, np.eye(30)[gold]) == pytest.approx(100.0 if seed != 2 else
                                                                                             100 - 50 / 30)


def test_micro_f1_ignores_no_relation_agreement():
    gold = np.array([0, 0, 0, 1, 2])
    assert micro_f1(gold, np.array([0, 0, 0, 0, 0])) == 0.0          # all no_relation right still scores 0
    assert micro_f1(gold, np.array([1, 0, 0, 1, 2])) == pytest.approx(100 * 2 * (2 / 3) * 1 / (2 / 3 + 1))


# ---------------------------------------------------------------- hierarchy


def test_hierarchical_probabilities_compose_and_sum_to_one():
    from odqa.relation.model import Hierarchy, log_probs
    h = Hierarchy(KLUE_RE_LABELS)
    assert h.families == ["no_relation", "org", "per"]
    torch.manual_seed(0)
    logits = torch.randn(5, 3 + 30) * 4
    p = log_probs(logits, h).exp()
    assert torch.allclose(p.sum(-1), torch.ones(5, dtype=p.dtype), atol=1e-6)
    fam = torch.softmax(logits[:, :3], -1)
    for f in range(3):
        members = [i for i, lab in enumerate(KLUE_RE_LABELS) if h.fam_of[i] == f]
        assert torch.allclose(p[:, members].sum(-1), fam[:, f], atol=1e-6)
        within = torch.softmax(logits[:, 3:][:, members], -1)
        assert torch.allclose(p[:, members] / fam[:, f:f + 1], within, atol=1e-5)
    assert torch.allclose(p[:, 0], fam[:, 0])          # no_relation is a family of its own
    # cross-entropy on the composition = CE(family) + CE(label | family)
    y = torch.tensor([0, 3, 12, 29, 10])
    ce = torch.nn.functional.nll_loss(log_probs(logits, h), y)
    fy = h.fam_of[y]
    ce_fam = torch.nn.functional.cross_entropy(logits[:, :3], fy, reduction="none")
    ce_fine = torch.stack([-torch.log_softmax(logits[i, 3:][h.members[fy[i]]], -1)[
        h.members[fy[i]].nonzero().flatten().tolist().index(int(y[i]))] for i in range(5)])
    assert torch.allclose(ce, (ce_fam + ce_fine).mean(), atol=1e-5)


def test_hierarchical_decoding_picks_the_family_first():
    from odqa.relation.inference import decode
    from odqa.relation.model import RESettings
    labels = ["no_relation", "org:a", "per:a", "per:b", "per:c"]
    probs = np.array([[0.30, 0.10, 0.20, 0.20, 0.20],     # per has 0.6: per:a (first max) though no_relation is top
                      [0.50, 0.10, 0.15, 0.15, 0.10],
                      [0.05, 0.50, 0.45, 0.00, 0.00]])
    assert decode(probs, RESettings(labels, hierarchical=True)).tolist() == [2, 0, 1]
    assert decode(probs, RESettings(labels, hierarchical=False)).tolist() == [0, 0, 1]
    m = re_metrics(np.array([2, 0, 1]), probs, decode(probs, RESettings(labels, hierarchical=True)))
    assert m["micro_f1"] == 100.0 and m["accuracy"] == 100.0


# ------------------------------------------------------------------- config


def test_re_yaml_documents_exactly_the_defaults():
    from odqa.relation.config import RETrainConfig
    from odqa.training import TASK_DECIDED
    data = yaml.safe_load((ROOT / "configs" / "re.yaml").read_text(encoding="utf-8"))
    data["train"]["lr"] = float(data["train"]["lr"])
    assert data == RETrainConfig().model_dump(exclude={"train": set(TASK_DECIDED)})
    assert load_config(ROOT / "configs" / "re.yaml", [], RETrainConfig) == RETrainConfig()


def test_the_flat_layout_of_older_re_configs_still_loads(tmp_path):
    from odqa.relation.config import RETrainConfig
    f = tmp_path / "old.yaml"
    f.write_text("markers: e1\nlr: 0.0003\nbatch_size: 8\npatience: 2\ntime_budget: 5\nthreads: 1\n")
    cfg = load_config(f, ["epochs=2", "train.seed=7"], RETrainConfig)
    assert cfg.markers == "e1" and cfg.train.lr == 3e-4 and cfg.train.batch_size == 8
    assert (cfg.train.early_stopping_patience, cfg.train.time_budget_minutes, cfg.train.num_threads) == (2, 5, 1)
    assert cfg.train.epochs == 2 and cfg.train.seed == 7
    flat = cfg.flat()
    assert (flat["lr"], flat["patience"], flat["time_budget"], flat["threads"], flat["markers"]) == (3e-4, 2, 5, 1, "e1")
    f.write_text("lr: 0.1\ntrain:\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="'lr' is the older name of 'train.lr'"):
        load_config(f, [], RETrainConfig)


@pytest.mark.parametrize("kwargs, message", [
    ({"pooling": "max"}, "config field 'pooling': input should be 'entity_start', 'cls' or 'mean', got 'max'"),
    ({"markers": "xml"}, "config field 'markers'"),
    ({"loss": "hinge"}, "config field 'loss'"),
    ({"no_relation_keep": 1.5}, "config field 'no_relation_keep': input should be less than or equal to 1"),
    ({"class_weight": 0.5, "loss": "label_smoothing"}, "class_weight goes with loss ce or focal"),
    ({"max_length": 4}, "config field 'max_length': input should be greater than or equal to 8, got 4"),
    ({"lr": 0}, "config field 'train.lr': input should be greater than 0, got 0"),
    ({"batch_size": 0}, "config field 'train.batch_size'"),
    ({"head": "mlp"}, "config field 'head'"),
    ({"bogus": 1}, "unknown config field 'bogus'"),
])
def test_config_validation(kwargs, message):
    from odqa.relation.config import RETrainConfig
    with pytest.raises(ConfigError) as e:
        RETrainConfig(**kwargs)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1


def test_class_weights_favour_rare_labels_in_the_loss():
    import torch

    from odqa.modeling.losses import LossConfig, make_loss
    from odqa.relation.task import class_weights
    labels = np.array([0] * 16 + [1] * 4 + [2])          # label 3 never seen: counted as 1
    assert class_weights(labels, 4, 0.0) is None
    w = class_weights(labels, 4, 0.5)
    assert torch.allclose(w, torch.tensor([1.0, 2.0, 4.0, 4.0]))
    assert torch.allclose(class_weights(labels, 4, 1.0), torch.tensor([1.0, 4.0, 16.0, 16.0]))
    logits = torch.zeros(2, 4)
    logits[0, 0] = logits[1, 2] = 2.0                      # both examples equally well predicted
    target = torch.tensor([0, 1])
    plain, weighted = make_loss(LossConfig("ce"))(logits, target), make_loss(LossConfig("ce"), w)(logits, target)
    # the worse-predicted example (target 1) has the larger weight: the weighted mean rises
    assert weighted > plain


# ----------------------------------------------------------------- features


def test_features_point_at_markers_and_keep_entities_when_cut(tiny):
    from transformers import AutoTokenizer

    from odqa.relation.features import featurize
    tok = AutoTokenizer.from_pretrained(str(tiny))
    tok.add_tokens(["@", "#", "*", "^"])          # the tiny vocabulary lacks the punctuation markers
    filler = " 김치는 한국의 전통 음식이다." * 12
    s = "이순신은 조선의 무신이다." + filler + " 세종대왕은 훈민정음을 창제하였다."
    far = REExample("far", s, Entity("이순신", 0, 2, "PER"), Entity("훈민정음", s.index("훈민정음"), s.index("훈민정음") + 3, "POH"))
    near = REExample("near", filler + " " + SENTENCES[0][0], Entity("이순신", len(filler) + 1, len(filler) + 3, "PER"),
                     Entity("조선", len(filler) + 6, len(filler) + 7, "ORG"))
    swapped = dataclasses.replace(far, subject=far.object, object=far.subject)
    f = featurize([far, near, swapped], tok, "typed", 32)
    assert f.truncated == 3 and all(len(x) <= 32 for x in f.ids)
    for i in range(3):
        toks = tok.convert_ids_to_tokens(f.ids[i].tolist())
        assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
        assert [toks[p] for p in f.positions[i]] == ["@", "#"]
    toks = tok.convert_ids_to_tokens(f.ids[1].tolist())
    assert toks.index("@") < toks.index("#")
    full = featurize([far], tok, "typed", 512)
    assert full.truncated == 0 and len(full.ids[0]) > 64
    bare = featurize([far], tok, "none", 32)
    assert tok.convert_ids_to_tokens(bare.ids[0].tolist())[bare.positions[0][0]].startswith("이")
    tok.add_special_tokens({"additional_special_tokens": ["[E1]", "[/E1]", "[E2]", "[/E2]"]})
    e1 = featurize([swapped, near], tok, "e1", 32)
    for i in range(2):
        toks = tok.convert_ids_to_tokens(e1.ids[i].tolist())
        assert [toks[p] for p in e1.positions[i]] == ["[E1]", "[E2]"] and "[/E1]" in toks and "[/E2]" in toks
    batch = f.collate([0, 1])
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["positions"].shape == (2, 2)
