"""`odqa train retriever` (reader and the others join this group)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import DeviceOpt, IndexDirOpt, JsonOpt, MixedPrecisionOpt, QuietOpt, echo, emit_json
from odqa.cli.train_options import (epochs_opt, freeze_embeddings_opt, lr_opt, max_steps_opt, resume_opt, seed_opt,
                                    stop_after_opt, time_budget_opt)

app = typer.Typer(no_args_is_help=True, help="Train models: the dense retriever, the reader, the reranker.")


@app.command("retriever")
def retriever(
    train: List[Path] = typer.Option(..., "--train", help="SQuAD/KorQuAD JSON with contexts (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output folder (HF format; use with --encoder PATH)."),
    backbone: str = typer.Option("offline:multilingual-e5-small", "--backbone", help="Backbone spec to start from."),
    epochs: float = epochs_opt(),
    max_steps: int = max_steps_opt(),
    batch_size: int = typer.Option(16, "--batch-size", help="Questions per batch (each brings 1 gold + 1 hard negative)."),
    lr: float = lr_opt(1e-5, "Peak learning rate (1e-5: the measured gain, BENCHMARKS.md)."),
    max_length: int = typer.Option(256, "--max-length", help="Passage tokens."),
    window_stride: int = typer.Option(128, "--window-stride", help="Longer passages become windows this many tokens "
                                      "apart, as `odqa index` makes them; the positive is the window holding the "
                                      "answer (0 = cut passages at --max-length)."),
    temperature: float = typer.Option(0.0, "--temperature", help="Softmax temperature of the contrastive loss "
                                      "(0 = the backbone's own: 0.01 for e5 models, which were trained with it; else 0.05)."),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between evaluations on held-out questions."),
    time_budget: float = time_budget_opt(),
    freeze_embeddings: bool = freeze_embeddings_opt(),
    freeze_layers: Optional[int] = typer.Option(None, "--freeze-layers", help="Also freeze all embeddings and the first N layers "
                                      "(faster steps on CPU, less drift from the pretrained encoder; 0 = train all; "
                                      "default: a third of the backbone's layers, 4 of e5-small's 12)."),
    holdout: float = typer.Option(0.1, "--holdout", help="Share of training questions held out to pick the best checkpoint."),
    negatives: Optional[List[Path]] = typer.Option(None, "--negatives", help="Corpus file(s) whose passages join the "
                                                   "training pool as negatives only, e.g. the rest of the corpus you "
                                                   "index (repeatable; never a file holding evaluation passages)."),
    side: str = typer.Option("both", "--side", help="both: train the shared encoder (in-batch + BM25 hard negatives); "
                             "query: train the query encoder alone against the base encoder's fixed passage vectors "
                             "(every training passage a negative; passages keep the base encoder)."),
    seed: int = seed_opt(),
    resume: bool = resume_opt(),
    device: str = DeviceOpt,
    mixed_precision: str = MixedPrecisionOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune the dense bi-encoder with in-batch and BM25 hard negatives (or its query side alone).

    Example: odqa train retriever --train korquad1_train.json --out runs/retriever --time-budget 50
    """
    from odqa.api.training import RetrieverTrainRequest, train_retriever

    cfg = RetrieverTrainRequest(
        train_files=train, out=out, negatives=negatives or [], side=side, resume=resume, backbone=backbone,
        max_length=max_length, window_stride=window_stride, temperature=temperature,
        freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers, holdout=holdout,
        train=dict(lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, eval_every=eval_every,
                          seed=seed, time_budget_minutes=time_budget, device=device,
                          mixed_precision=mixed_precision))
    res = train_retriever(cfg, quiet=quiet or json_out)
    report = res.to_json()
    before = res.heldout_before
    if json_out:
        emit_json(report)
        return
    echo(f"held-out recall@1 {before.get('recall@1', 0):.3f} -> {res.best_metric:.3f} (step {res.best_step}, "
         f"{res.steps} steps, {res.minutes} min, {res.stopped})")
    echo(f"encoder saved to {out / 'best'}: odqa index CORPUS --name NAME --dense --encoder {out / 'best'}")


@app.command("reader")
def reader(
    train: List[Path] = typer.Option(..., "--train", help="SQuAD/KorQuAD/KLUE-MRC JSON, JSONL or a datasets folder (repeatable)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Questions with contexts to evaluate on (closed domain EM/F1)."),
    out: Path = typer.Option(..., "--out", help="Output folder; the best checkpoint is OUT/best (use with --reader)."),
    backbone: str = typer.Option("offline:multilingual-e5-small", "--backbone", help="Backbone spec: hub name, folder, offline:..."),
    head: str = typer.Option("linear", "--head", help="Span head: linear | cnn | lstm."),
    init: Optional[str] = typer.Option(None, "--init", help="Start backbone and head from this reader: a checkpoint "
                                       "folder or a shipped reader's name (ko-reader); its head settings replace "
                                       "--head and --backbone."),
    em_feature: bool = typer.Option(False, "--em-feature", help="Mark passage tokens whose morpheme occurs in the "
                                    "question (a learned embedding added to the token embeddings; kept in the "
                                    "checkpoint, used by ask/evaluate)."),
    epochs: float = epochs_opt(),
    max_steps: int = max_steps_opt(),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per micro-batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step."),
    lr: float = lr_opt(1e-4),
    max_length: int = typer.Option(384, "--max-length", help="Window length in tokens."),
    stride: int = typer.Option(128, "--stride", help="Tokens shared by consecutive windows."),
    eval_every: int = typer.Option(0, "--eval-every", help="Optimizer steps between dev evaluations (0 = each epoch)."),
    eval_limit: int = typer.Option(300, "--eval-limit", help="Dev questions decoded per evaluation (0 = all)."),
    patience: int = typer.Option(0, "--patience", help="Stop after this many evaluations without F1 gain (0 = off)."),
    save_every: int = typer.Option(0, "--save-every", min=0, help="Optimizer steps between resumable OUT/last "
                                   "checkpoints (0 = with each evaluation)."),
    time_budget: float = time_budget_opt(),
    stop_after: int = stop_after_opt(),
    freeze_embeddings: bool = freeze_embeddings_opt(),
    freeze_layers: int = typer.Option(0, "--freeze-layers", help="Also freeze all embeddings and the first N layers."),
    layers: Optional[int] = typer.Option(None, "--layers", min=1, help="Keep N of the backbone's transformer layers "
                                         "(evenly spaced, first and last kept): a faster reader; with --init R "
                                         "--teacher R, distilled from R."),
    negative_ratio: float = typer.Option(1.0, "--negative-ratio", min=0.0, max=1.0,
                                         help="Share of no-answer windows trained on per epoch."),
    negative_passages: int = typer.Option(0, "--negative-passages", min=0, help="Mined passages per question trained "
                                          "as no-answer windows (multi-passage training; needs --pool)."),
    pool: Optional[str] = typer.Option(None, "--pool", help="Where negatives are mined: an index name or a corpus "
                                       "file (never one holding the evaluation articles, or exclude them)."),
    pool_exclude: Optional[List[Path]] = typer.Option(None, "--pool-exclude", help="Question files whose gold passages "
                                                      "(ids, or contexts) are never mined, e.g. the dev set (repeatable)."),
    mining: str = typer.Option("sparse", "--mining", help="Retriever that mines: sparse | hybrid (an index with vectors)."),
    normalisation: str = typer.Option("window", "--normalisation", help="window: span softmax per window; shared: "
                                      "over all windows of all passages of a question (batches of whole questions)."),
    max_question_windows: int = typer.Option(8, "--max-question-windows", help="shared: windows per question."),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir", help="Folder of the pool index."),
    teacher: Optional[List[str]] = typer.Option(None, "--teacher", help="Reader to distil into this one (a folder or "
                                                "a shipped name; repeat to distil a soft-voted ensemble; same backbone)."),
    distill_weight: Optional[float] = typer.Option(None, "--distill-weight", min=0.0, max=1.0, help="With --teacher: "
                                                   "share of the loss following the teachers' soft spans [default: 0.5]."),
    distill_temperature: Optional[float] = typer.Option(None, "--distill-temperature", min=0.01, help="With --teacher: "
                                                        "softening of both distributions [default: 2.0]."),
    seed: int = seed_opt(),
    wandb: bool = typer.Option(False, "--wandb", help="Log to Weights & Biases if installed."),
    resume: bool = resume_opt(),
    device: str = DeviceOpt,
    mixed_precision: str = MixedPrecisionOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune an extractive reader (backbone + span head).

    Example: odqa train reader --train korquad1_train.json --dev korquad1_dev.json --out runs/reader --head linear
    """
    from odqa.api.training import ReaderTrainRequest, train_reader

    cfg = ReaderTrainRequest(
        train_files=train, out=out, dev=dev, resume=resume, init=init, backbone=backbone,
        head=dict(type=head, em_feature=em_feature),
        window=dict(max_length=max_length, stride=stride), freeze_embeddings=freeze_embeddings,
        freeze_layers=freeze_layers, layers=layers, negative_ratio=negative_ratio, eval_limit=eval_limit,
        negative_passages=negative_passages, pool=pool, pool_exclude=pool_exclude or [], mining=mining,
        normalisation=normalisation, max_question_windows=max_question_windows, index_dir=index_dir,
        teachers=teacher or [], **{k: v for k, v in (("distill_weight", distill_weight),
                                                      ("distill_temperature", distill_temperature)) if v is not None},
        train=dict(lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
                          eval_every=eval_every, early_stopping_patience=patience, seed=seed, save_every=save_every,
                          time_budget_minutes=time_budget, stop_after=stop_after, wandb=wandb, device=device,
                          mixed_precision=mixed_precision))
    res = train_reader(cfg, quiet=quiet or json_out)
    report = res.to_json()
    if json_out:
        emit_json(report)
        return
    best = f"{res.best_metric:.2f}" if res.best_metric is not None else "-"
    echo(f"best dev {res.metric} {best} (step {res.best_step} of {res.steps}, {res.minutes} min, "
         f"{res.stopped}); {res.train_questions} questions, {res.train_windows} windows")
    echo(f"reader saved to {out / 'best'}: odqa ask \"질문\" --index NAME --reader {out / 'best'}")


@app.command("reranker")
def reranker(
    train: List[Path] = typer.Option(..., "--train", help="SQuAD/KorQuAD/KLUE-MRC JSON with contexts (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output folder; the best checkpoint is OUT/best (use with --reranker)."),
    pool: Optional[List[Path]] = typer.Option(None, "--pool", help="Corpus file(s) hard negatives are mined from by BM25 "
                                              "(the training passages join them; never a file holding evaluation passages)."),
    pool_index: Optional[str] = typer.Option(None, "--pool-index", help="Or an index whose retriever mines them "
                                             "(hybrid when it has vectors)."),
    backbone: str = typer.Option("offline:multilingual-e5-small", "--backbone", help="Backbone spec to start from."),
    negatives: int = typer.Option(3, "--negatives", help="Hard negatives per question in each step (listwise softmax over 1 + M)."),
    negative_depth: int = typer.Option(20, "--negative-depth", help="Negatives are drawn from the retriever's top-N passages "
                                       "that are neither gold nor hold an answer."),
    max_length: int = typer.Option(256, "--max-length", help="Tokens per (question, passage) pair."),
    epochs: float = epochs_opt(),
    max_steps: int = max_steps_opt(),
    batch_size: int = typer.Option(4, "--batch-size", help="Questions per step (each brings 1 + --negatives pairs)."),
    lr: float = lr_opt(3e-5),
    eval_every: int = typer.Option(100, "--eval-every", help="Steps between held-out evaluations (0 = each epoch)."),
    eval_questions: int = typer.Option(100, "--eval-questions", help="Held-out questions reranked per evaluation."),
    eval_candidates: int = typer.Option(10, "--eval-candidates", help="Retrieved passages reranked per held-out question."),
    holdout: float = typer.Option(0.05, "--holdout", help="Share of training passages (whole articles) held out."),
    time_budget: float = time_budget_opt(),
    freeze_embeddings: bool = freeze_embeddings_opt(),
    freeze_layers: Optional[int] = typer.Option(None, "--freeze-layers", help="Also freeze all embeddings and the first N "
                                                "layers (default: a third of the backbone's layers; 0 = train all)."),
    index_dir: Optional[Path] = IndexDirOpt,
    seed: int = seed_opt(),
    resume: bool = resume_opt(),
    device: str = DeviceOpt,
    mixed_precision: str = MixedPrecisionOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune a cross-encoder reranker over (question, passage) pairs with hard negatives.

    Example: odqa train reranker --train korquad1_train.json --pool corpus.jsonl --out runs/reranker --time-budget 25
    """
    from odqa.api.training import RerankerTrainRequest, train_reranker

    cfg = RerankerTrainRequest(
        train_files=train, out=out, pool=pool or [], pool_index=pool_index, index_dir=index_dir, resume=resume,
        backbone=backbone, negatives=negatives, negative_depth=negative_depth, max_length=max_length,
        holdout=holdout, eval_questions=eval_questions, eval_candidates=eval_candidates,
        freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers,
        train=dict(lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, eval_every=eval_every,
                   seed=seed, time_budget_minutes=time_budget, device=device, mixed_precision=mixed_precision))
    res = train_reranker(cfg, quiet=quiet or json_out)
    if json_out:
        emit_json(res.to_json())
        return
    last = res.last_eval
    best = f"{res.best_metric:.3f}" if res.best_metric is not None else "-"
    echo(f"held-out recall@1 {best} (step {res.best_step} of {res.steps}, {res.minutes} min, {res.stopped}); "
         f"retriever's own recall@1 {last.get('retrieval_recall@1', 0):.3f} on the same {res.eval_questions} questions")
    echo(f"reranker saved to {out / 'best'}: odqa ask \"질문\" --index NAME --reranker {out / 'best'} --rerank 20")


@app.command("particles")
def particles(
    reader: Path = typer.Option(..., "--reader", "-r", help="Reader checkpoint whose predictions the rules correct."),
    train: List[Path] = typer.Option(..., "--train", help="Training questions with contexts (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Rules file (default: READER/particles.json)."),
    analyzer: str = typer.Option("mecab", "--analyzer", help="Morpheme analyzer for tagging: mecab | kiwi."),
    limit: int = typer.Option(0, "--limit", help="Use only the first N questions (0 = all)."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Learn which trailing morphemes (josa, endings) to strip from the reader's answers.

    The reader reads each training question's own passage; a rule (POS tag + form) is
    kept only if stripping it turns more predictions into the gold answer than it breaks.

    Example: odqa train particles --reader runs/reader/best --train korquad1_train.json
    """
    from odqa.api.training import ParticlesTrainRequest, train_particles

    cfg = ParticlesTrainRequest(reader=reader, train_files=train, out=out, analyzer=analyzer, limit=limit)
    res = train_particles(cfg, quiet=quiet or json_out)
    report = res.to_json()
    if json_out:
        emit_json(report)
        return
    echo(f"{len(res.rules)} rule(s) learned from {res.examples} predictions; train EM {res.train_em_before:.2f} "
         f"-> {res.train_em_after:.2f} (learning set)")
    for r in report["rules"]:
        echo(f"  {r}")
    echo(f"saved to {res.out}: use --particles auto (or --particles {res.out}) with ask/evaluate")


@app.command("calibration")
def calibration(
    reader: str = typer.Option(..., "--reader", "-r", help="Reader checkpoint folder to calibrate."),
    questions: Path = typer.Option(..., "--questions", help="Held-out TRAINING questions with answers (never the "
                                   "dev set), e.g. scripts/split_holdout.py's held.json."),
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Read as the pipeline does, over this index's "
                                        "top -k passages (default: closed domain, each question's own passage)."),
    k: Optional[int] = typer.Option(None, "-k", min=1, help="Passages read with --index (default: the pipeline's)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Calibration file (default: READER/calibration.json)."),
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fit the temperature that makes the reader's answer probability match how often it is right.

    Example: odqa train calibration --reader runs/reader/best --questions runs/holdout/held.json
    """
    from odqa.api import calibrate_reader

    res = calibrate_reader(reader, questions, index=index, k=k, out=out, index_dir=index_dir, device=device,
                           quiet=quiet or json_out)
    if json_out:
        emit_json(res.to_json())
        return
    b, a = res.before, res.after
    echo(f"temperature {res.temperature:g} from {res.questions} questions: ECE {b['ece']:.3f} -> {a['ece']:.3f}, "
         f"AUROC {a['auroc']}, EM at 50 % coverage {a['em_at_coverage']['50']}")
    echo(f"saved to {res.out}: ask, evaluate, predict and serve apply it with this reader")

