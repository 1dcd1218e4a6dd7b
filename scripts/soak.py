"""Soak test of `odqa serve`: mixed load for a long time, resident memory sampled, errors counted.

    python scripts/soak.py                                  # demo index, shipped reader, 8 clients, 20 minutes
    python scripts/soak.py --duration 60 --warmup 20        # a short check of the script itself

Starts a server process (`odqa serve --index demo --reader ko-reader`) on a free loopback port, waits until it
is ready, then lets `--clients` threads send a mix for `--duration` seconds: /v1/ask with varying `k` and `top`
(most requests), /v1/retrieve, and malformed bodies that must be refused with 422. Every `--sample` seconds the
server's resident memory (with its children) is recorded. The memory after `--warmup` seconds is the baseline;
the report gives the largest resident memory after it, its growth over the baseline, requests and errors
(anything but 200, an expected 422, or a 503 that carries `Retry-After`) and the samples. Exits 1 when there was
an error or the growth is over `--max-growth` percent.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests.serving: the server process helper
sys.path.insert(0, str(Path(__file__).resolve().parent))         # load_test: percentiles and memory

import httpx  # noqa: E402

import odqa  # noqa: E402
from load_test import percentile, rss_mb  # noqa: E402
from odqa.api.demo import demo_file  # noqa: E402
from odqa.corpus import load_questions  # noqa: E402
from tests.serving import ServerProcess  # noqa: E402

BAD = [{"question": ""}, {"question": "질문", "k": 0}, {"question": "질문", "top": 999}, {"nope": 1}]


def request(rng: random.Random, questions: list[str]) -> tuple[str, dict, int]:
    """(path, body, the status expected) of one request of the mix."""
    roll = rng.random()
    if roll < 0.05:
        return "/v1/ask", rng.choice(BAD), 422
    q = rng.choice(questions)
    if roll < 0.25:
        return "/v1/retrieve", {"question": q, "k": rng.choice([1, 3, 10])}, 200
    return "/v1/ask", {"question": q, "k": rng.choice([1, 2, 2, 3]), "top": rng.choice([1, 3])}, 200


def soak(url: str, pid: int, questions: list[str], args) -> dict:
    end = time.monotonic() + args.duration
    lat, errors, counts, lock = [], [], {"requests": 0, "refused": 0}, threading.Lock()
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()

    def client(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=url, timeout=args.timeout + 30) as c:
            while time.monotonic() < end:
                path, body, expected = request(rng, questions)
                s = time.perf_counter()
                try:
                    r = c.post(path, json=body)
                    status, retry = r.status_code, r.headers.get("Retry-After")
                except httpx.HTTPError as e:
                    status, retry = type(e).__name__, None
                dt = time.perf_counter() - s
                with lock:
                    counts["requests"] += 1
                    if status == expected:
                        if status == 200:
                            lat.append(dt)
                    elif status == 503 and retry:
                        counts["refused"] += 1
                    else:
                        errors.append(f"{path} {status} (expected {expected})")

    def sampler() -> None:
        while time.monotonic() < end:
            samples.append((round(time.monotonic() - t0, 1), rss_mb(pid)))
            time.sleep(args.sample)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples.append((round(time.monotonic() - t0, 1), rss_mb(pid)))
    after = [mb for t, mb in samples if t >= args.warmup]
    base = after[0] if after else samples[-1][1]
    peak = max(after) if after else base
    return {"requests": counts["requests"], "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
            "refused_503": counts["refused"], "ok_p50_s": percentile(lat, 50), "ok_p99_s": percentile(lat, 99),
            "qps": len(lat) / (time.monotonic() - t0), "rss_start_mb": samples[0][1], "rss_baseline_mb": base,
            "rss_peak_after_warmup_mb": peak, "rss_end_mb": samples[-1][1],
            "growth_after_warmup_pct": 100.0 * (peak - base) / base if base else 0.0, "samples": samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", default="demo")
    ap.add_argument("--index-dir", help="Folder holding --index (default: the demo index, built in a temporary folder).")
    ap.add_argument("--reader", default="ko-reader")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=1200.0, help="Seconds of load.")
    ap.add_argument("--warmup", type=float, default=120.0, help="Seconds before the memory baseline is taken.")
    ap.add_argument("--sample", type=float, default=10.0, help="Seconds between memory samples.")
    ap.add_argument("--timeout", type=float, default=30.0, help="The server's per-request timeout.")
    ap.add_argument("--max-growth", type=float, default=10.0, help="Percent of growth after warm-up that fails.")
    ap.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = ap.parse_args()
    questions = [q.question for q in load_questions(demo_file("demo_questions.jsonl"))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.index_dir or tmp)
        if not args.index_dir:
            odqa.build_index(demo_file("demo_corpus.jsonl"), args.index, None, index_dir=root, quiet=True)
        with ServerProcess("--index", args.index, "--index-dir", root, "--reader", args.reader,
                           "--timeout", args.timeout) as srv:
            srv.wait_ready(300)
            rep = soak(srv.url, srv.proc.pid, questions, args)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"{args.clients} clients x {args.duration:g} s, index {args.index}, reader {args.reader}, "
              f"memory every {args.sample:g} s, baseline after {args.warmup:g} s")
        for k, v in rep.items():
            if k != "samples":
                print(f"  {k}: {round(v, 3) if isinstance(v, float) else v}")
        print("  samples (s, MB):", " ".join(f"{t:g}:{mb:.0f}" for t, mb in rep["samples"]))
    if rep["errors"] or rep["growth_after_warmup_pct"] > args.max_growth:
        sys.exit(1)


if __name__ == "__main__":
    main()
