"""Build the public retrieval benchmark from ../shared/data (never copied into the repo).

corpus  = every KorQuAD paragraph of korquad1_train.json + korquad1_dev.json (455)
          + every distinct KLUE-RE sentence of the two klue_re files (distractors)
dev     = the 812 korquad1_dev questions, gold = their paragraph's id
train   = the 1,987 korquad1_train questions (for tuning only)

KLUE-MRC pool (written too): klue_passages.jsonl = every distinct context of klue_mrc_train.json and
klue_mrc_dev.json, to be added to an index of the corpus above (`odqa index --name bench-klue --add`), so that
KLUE-style questions are answered open domain among their passages and the benchmark's distractors;
klue_dev_questions.jsonl (593) and klue_train_questions.jsonl (3,282, for choices only), gold = their context.

    python scripts/make_bench.py --data ../shared/data --out bench
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from odqa.corpus import load_questions, read_squad, write_jsonl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    kq = {split: args.data / "korquad1" / f"korquad1_{split}.json" for split in ("train", "dev")}

    rows, seen = [], set()
    for split in ("train", "dev"):
        for p in read_squad(kq[split]):
            if p.text not in seen:
                seen.add(p.text)
                rows.append({"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id})
    n_kq = len(rows)
    for name in ("klue-re-train-subset.json", "klue-re-dev-public.json"):
        for ex in json.loads((args.data / "klue_re" / name).read_text(encoding="utf-8")):
            s = ex["sentence"]
            if s not in seen:
                seen.add(s)
                rid = "re-" + hashlib.sha1(s.encode("utf-8")).hexdigest()[:12]
                rows.append({"id": rid, "title": "", "text": s, "doc_id": rid})
    write_jsonl(args.out / "corpus.jsonl", rows)

    counts = {}
    for split in ("dev", "train"):
        qs = load_questions(kq[split])
        counts[split] = write_jsonl(args.out / f"{split}_questions.jsonl",
                                    ({"id": q.id, "question": q.question, "answers": q.answers,
                                      "gold_ids": q.gold_ids[:1]} for q in qs))
    klue = {split: args.data / "klue_mrc" / f"klue_mrc_{split}.json" for split in ("train", "dev")}
    klue_rows = []
    for split in ("train", "dev"):
        for p in read_squad(klue[split]):
            if p.text not in seen:
                seen.add(p.text)
                klue_rows.append({"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id})
    write_jsonl(args.out / "klue_passages.jsonl", klue_rows)
    for split in ("dev", "train"):
        counts[f"klue_{split}"] = write_jsonl(args.out / f"klue_{split}_questions.jsonl",
                                              ({"id": q.id, "question": q.question, "answers": q.answers,
                                                "gold_ids": q.gold_ids[:1]} for q in load_questions(klue[split])))
    print(json.dumps({"passages": len(rows), "korquad_paragraphs": n_kq, "distractors": len(rows) - n_kq,
                      "dev_questions": counts["dev"], "train_questions": counts["train"],
                      "klue_passages": len(klue_rows), "klue_dev_questions": counts["klue_dev"],
                      "klue_train_questions": counts["klue_train"], "out": str(args.out)}))


if __name__ == "__main__":
    main()
