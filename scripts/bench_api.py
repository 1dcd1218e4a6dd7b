"""Time per question: one loaded `odqa.Pipeline` against one `odqa ask` process per question.

    python scripts/bench_api.py --index demo --questions 20 [--reader runs/reader/best] [--index-dir DIR]

Both sides ask the same questions (the bundled demo questions, repeated if needed) with the same
index and reader, one after the other in one run; the output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="demo")
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--reader", default=None)
    ap.add_argument("--questions", type=int, default=20)
    args = ap.parse_args()

    import odqa
    from odqa.api.demo import demo_file, run_demo
    from odqa.corpus import load_questions

    if args.index == "demo":
        run_demo(None, 0, args.index_dir)          # builds the demo index if needed
    base = [q.question for q in load_questions(demo_file("demo_questions.jsonl"))]
    questions = [base[i % len(base)] for i in range(args.questions)]

    t0 = time.perf_counter()
    pipe = odqa.Pipeline.from_index(args.index, reader=args.reader, index_dir=args.index_dir)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    api_answers = [pipe.ask(q).answer for q in questions]
    t_ask = time.perf_counter() - t1

    env = {**os.environ, "ODQA_QUIET": "1"}
    extra = (["--reader", args.reader] if args.reader else []) + (["--index-dir", args.index_dir] if args.index_dir else [])
    t2 = time.perf_counter()
    cli_answers = []
    for q in questions:
        out = subprocess.run([sys.executable, "-m", "odqa", "ask", q, "--index", args.index, "--json", *extra],
                             capture_output=True, text=True, env=env, check=True).stdout
        cli_answers.append((json.loads(out)["answers"] or [{}])[0].get("text"))
    t_cli = time.perf_counter() - t2

    same = sum(a is not None and a.text == c for a, c in zip(api_answers, cli_answers))
    print(json.dumps({
        "index": args.index, "reader": "+".join(pipe.reader_settings["readers"]) or "sentence-level", "questions": len(questions),
        "pipeline": {"load_seconds": round(t_load, 2), "seconds_per_question": round(t_ask / len(questions), 4),
                     "seconds_per_question_with_load": round((t_load + t_ask) / len(questions), 4)},
        "cli_processes": {"seconds_per_question": round(t_cli / len(questions), 3)},
        "speedup_per_question": round((t_cli / len(questions)) / (t_ask / len(questions)), 1),
        "same_best_answers": same, "cores": os.cpu_count(),
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
