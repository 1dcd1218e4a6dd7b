"""Long passages: the indexing rate (characters per second) of a corpus holding one 5 MB passage,
next to the benchmark corpus's, measured in one run (same machine, same settings).

    python scripts/make_bench.py --data ../shared/data --out bench
    python scripts/long_passage_bench.py --bench bench            # --mb 5 --repeat 2

The long passage is the benchmark corpus's own texts joined with spaces (and repeated) up to
`--mb` megabytes of UTF-8, so both corpora hold the same kind of Korean text. Each build runs
`odqa.build_index` (sparse index, default analyzer) into a temporary folder; the best of
`--repeat` builds is reported (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from odqa.api.indexes import build_index
from odqa.corpus import write_jsonl


def long_text(texts: list[str], megabytes: float) -> str:
    joined = " ".join(texts)
    size = int(megabytes * 1_000_000)
    reps = size // len(joined.encode("utf-8")) + 1
    return (" ".join([joined] * reps)).encode("utf-8")[:size].decode("utf-8", errors="ignore")


def rate(corpus: Path, chars: int, root: Path, repeat: int, overrides: list[str]) -> dict:
    best = None
    for i in range(repeat):
        t0 = time.perf_counter()
        build_index(corpus, f"{corpus.stem}-{i}", overrides=overrides, index_dir=root, quiet=True)
        secs = time.perf_counter() - t0
        best = secs if best is None else min(best, secs)
    return {"corpus": str(corpus), "characters": chars, "seconds": round(best, 2),
            "chars_per_second": round(chars / best)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"), help="folder with corpus.jsonl (make_bench.py)")
    ap.add_argument("--mb", type=float, default=5.0, help="size of the long passage in MB of UTF-8")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override, e.g. "
                    "analyzer.name=kiwi")
    args = ap.parse_args()
    bench = args.bench / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in bench.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = long_text(texts, args.mb)
        long = root / "long.jsonl"
        write_jsonl(long, [{"id": "long", "title": "", "text": text}])
        rows = [rate(bench, sum(map(len, texts)), root / "indexes", args.repeat, args.overrides),
                rate(long, len(text), root / "indexes", args.repeat, args.overrides)]
    rows[1]["megabytes"] = args.mb
    rusage = [resource.getrusage(who).ru_maxrss // 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    print(json.dumps({"bench": rows[0], "long_passage": rows[1],
                      "long_over_bench_rate": round(rows[1]["chars_per_second"] / rows[0]["chars_per_second"], 3),
                      "peak_rss_mb": {"process": rusage[0], "workers": rusage[1]}, "overrides": args.overrides},
                     ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
