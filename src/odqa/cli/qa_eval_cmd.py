"""Body of `odqa evaluate` (answers): open or closed domain, one reader or a soft-voted ensemble."""

from __future__ import annotations

import json
import time
from pathlib import Path

from odqa.atomic import AtomicFolder
from odqa.cli.ask_cmd import open_reader, resolve_mode
from odqa.cli.common import echo, emit_json, warn
from odqa.corpus import load_questions
from odqa.qa_eval import closed_hits
from odqa.reader.postprocess import Span


def _vote(per_reader: list[list[list[Span]]], questions) -> list[list[Span]]:
    """Soft voting over the readers' n-best lists on character offsets."""
    from odqa.reader.ensemble import soft_vote
    nbests = [{q.id: [s.to_json() for s in spans] for q, spans in zip(questions, answers)} for answers in per_reader]
    voted = soft_vote(nbests, None)
    return [[Span(e["text"], e["passage_id"], e["start"], e["end"], e.get("score", 0.0), e["probability"])
             for e in voted.get(q.id, [])] for q in questions]


def run_answers(*, index, readers, questions, closed, k, mode, hybrid, encoder, retrieval_weight, particles, limit,
                out, index_dir, json_out, quiet) -> None:
    from odqa.qa_eval import score_answers
    from odqa.retrieval.evaluate import Judge
    qs = load_questions(questions)
    if limit:
        qs = qs[:limit]
    texts = [q.question for q in qs]
    timings: dict[str, float] = {}
    idx = judge = None
    t0 = time.perf_counter()
    if closed:
        hits = closed_hits(qs)
    else:
        from odqa.retrieval.indexing import load_index
        idx = load_index(index, index_dir)
        for reason in idx.stale:
            warn(f"index '{index}' is stale: {reason}")
        mode = resolve_mode(mode, idx)
        retriever = idx.retriever(mode, hybrid, encoder)
        hits = []
        for b in range(0, len(texts), 64):
            hits += retriever.search(texts[b:b + 64], k)
        judge = Judge(idx.canonical, idx.passage_ids())
    timings["retrieve"] = time.perf_counter() - t0
    if not readers:
        warn("no --reader: answers are whole sentences, so EM/F1 will be low (train one with `odqa train reader`)")
    t1 = time.perf_counter()
    models = [open_reader(path, idx, 20, retrieval_weight, particles) for path in readers or [None]]
    timings["load_reader"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    per_reader = [rd.read_batch(texts, hits, quiet=quiet or json_out) for rd in models]
    timings["read"] = time.perf_counter() - t2
    answers = per_reader[0] if len(per_reader) == 1 else _vote(per_reader, qs)
    rep = score_answers(qs, answers, None if closed else hits, judge, k)
    m = rep["metrics"]
    m["setting"] = {"closed": closed, "index": index, "mode": None if closed else mode, "k": None if closed else k,
                    "readers": [str(r) for r in readers], "retrieval_weight": retrieval_weight,
                    "particles": str(particles) if particles else None, "questions_file": str(questions)}
    m["seconds"] = {s: round(v, 2) for s, v in timings.items()}
    m["seconds_per_question"] = {s: round(v / max(1, len(qs)), 4) for s, v in timings.items()}
    if out:
        with AtomicFolder(Path(out)) as tmp:
            for name, data in (("predictions.json", rep["predictions"]), ("nbest.json", rep["nbest"]),
                               ("metrics.json", m)):
                (tmp / name).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    if json_out:
        emit_json(m)
        return
    where = "closed domain (gold passage)" if closed else f"open domain, index '{index}', {mode} top-{k}"
    echo(f"{m['scored']} questions, {where}: EM {m['em']:.2f}  F1 {m['f1']:.2f}  (no answer: {m['no_answer']})")
    if "retrieval" in m:
        echo("retrieval " + "  ".join(f"{key}={v:.4f}" for key, v in m["retrieval"].items()))
    echo("seconds per question: " + "  ".join(f"{s} {v:.3f}" for s, v in m["seconds_per_question"].items()))
    if out:
        echo(f"wrote {out}/predictions.json, nbest.json, metrics.json")
