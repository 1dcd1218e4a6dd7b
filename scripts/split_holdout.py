"""Split SQuAD-shaped training files by article into a training part and a held-out part.

Settings (checkpoints, thresholds, temperatures, k, weights) are chosen on the held-out part of
the *training* files, never on a dev file. The split is deterministic: an article goes to the
held-out part when sha1("holdout:" + title) mod 100 < --percent (salted: the
dev files were cut from the same sources by the unsalted hash). Both parts keep the SQuAD shape, so every
odqa command reads them.

    python scripts/split_holdout.py ../shared/data/korquad1/korquad1_train.json \
        ../shared/data/klue_mrc/klue_mrc_train.json --percent 10 --out runs/holdout

writes runs/holdout/<stem>.fit.json and runs/holdout/<stem>.held.json for each file, all held-out
articles together in runs/holdout/held.json (one file for `odqa train reader --dev`), and prints
the counts as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path


def held_out(title: str, percent: int) -> bool:
    return int(hashlib.sha1(f"holdout:{title}".encode("utf-8")).hexdigest(), 16) % 100 < percent


def _questions(articles: list[dict]) -> int:
    return sum(len(p.get("qas", [])) for a in articles for p in a.get("paragraphs", []))


def _write(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def split(path: Path, percent: int, out: Path) -> tuple[dict, list[dict]]:
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    fit, held = [], []
    for article in doc["data"]:
        (held if held_out(str(article.get("title", "")), percent) else fit).append(article)
    out.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    _write(out / f"{stem}.fit.json", {**doc, "data": fit})
    _write(out / f"{stem}.held.json", {**doc, "data": held})
    counts = {"file": str(path), "fit_articles": len(fit), "held_articles": len(held),
              "fit_questions": _questions(fit), "held_questions": _questions(held)}
    return counts, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--percent", type=int, default=10, help="share of articles held out (0-100)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    parts = [split(f, args.percent, args.out) for f in args.files]
    _write(args.out / "held.json", {"version": "holdout", "data": [a for _, held in parts for a in held]})
    print(json.dumps([counts for counts, _ in parts], ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
