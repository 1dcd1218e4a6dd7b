"""Bounded load test of `odqa serve`: concurrent clients for a fixed time, micro-batching on and off.

    python scripts/load_test.py                       # demo index, shipped reader, 16 clients x 60 s, on and off
    python scripts/load_test.py --clients 8 --duration 20 --batching on
    python scripts/load_test.py --url http://127.0.0.1:8000     # a server already running (one run)
    python scripts/load_test.py --clients 64 --timeout 10 --batching on --overload   # past capacity

With `--overload` the load is meant to exceed capacity: a 503 that carries `Retry-After` is an expected answer,
not an error, and the run fails when any request got something else than 200 or such a 503, or took longer
than the server's timeout plus 2 s (a request that hangs).

For each setting it starts a server process (`odqa serve --index demo --reader ko-reader`) on a free
loopback port, waits until /v1/health is ready, lets every client POST the demo questions to /v1/ask
one after another until the time is up, then stops the server. Reports errors, QPS, latency
percentiles, the mean batch size and the server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests.serving: the server process helper

import httpx  # noqa: E402
import psutil  # noqa: E402

import odqa  # noqa: E402
from odqa.api.demo import demo_file  # noqa: E402
from odqa.corpus import load_questions  # noqa: E402
from tests.serving import ServerProcess  # noqa: E402


def percentile(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else (xs[0] if xs else 0.0)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def drive(url: str, questions: list[str], clients: int, duration: float, shed_ok: bool = False) -> dict:
    """`clients` threads asking in a loop for `duration` seconds: latencies, errors, batch sizes; every answer's
    status and the longest any request took (`shed_ok`: a 503 with Retry-After is no error)."""
    lat, batch, errors, lock = [], [], [], threading.Lock()
    statuses: dict[str, int] = {}
    longest = [0.0]
    end = time.monotonic() + duration

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            n = i
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/ask", json={"question": questions[n % len(questions)]})
                    ok = r.status_code == 200
                    shed = r.status_code == 503 and "retry-after" in r.headers
                except httpx.HTTPError as e:
                    r, ok, shed = e, False, False
                dt = time.perf_counter() - t0
                with lock:
                    status = str(getattr(r, "status_code", type(r).__name__))
                    statuses[status] = statuses.get(status, 0) + 1
                    longest[0] = max(longest[0], dt)
                    if ok:
                        lat.append(dt)
                        batch.append(r.json()["batch_size"])
                    elif not (shed and shed_ok):
                        errors.append(status)
                n += clients
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"requests": sum(statuses.values()), "statuses": statuses, "longest_s": longest[0],
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "qps": len(lat) / wall, "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "mean_batch": statistics.mean(batch) if batch else 0.0, "seconds": wall}


def run(batching: str, args, root: Path, questions: list[str]) -> dict:
    flag = "--batching" if batching == "on" else "--no-batching"
    with ServerProcess("--index", args.index, "--index-dir", root, "--reader", args.reader, flag,
                       "--max-batch-size", args.max_batch_size, "--max-wait-ms", args.max_wait_ms,
                       "--timeout", args.timeout) as srv:
        srv.wait_ready(300)
        before = rss_mb(srv.proc.pid)
        res = drive(srv.url, questions, args.clients, args.duration, args.overload)
        res.update(rss_before=before, rss_after=rss_mb(srv.proc.pid))
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="Target a running server instead of starting one (one run, no memory figures).")
    ap.add_argument("--index", default="demo")
    ap.add_argument("--index-dir", help="Folder holding --index (default: the demo index, built in a temporary folder).")
    ap.add_argument("--reader", default="ko-reader")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0, help="Seconds per setting.")
    ap.add_argument("--batching", choices=["on", "off", "both"], default="both")
    ap.add_argument("--max-batch-size", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="The server's per-request timeout (at saturation latency is clients / QPS).")
    ap.add_argument("--overload", action="store_true", help="Past capacity on purpose: 503 with Retry-After is an "
                    "expected answer; fail on anything else or on a request slower than the timeout + 2 s.")
    args = ap.parse_args()
    questions = [q.question for q in load_questions(demo_file("demo_questions.jsonl"))]
    rows = {}
    if args.url:
        rows["url"] = {**drive(args.url, questions, args.clients, args.duration, args.overload), "rss_before": None,
                       "rss_after": None}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(args.index_dir or tmp)
            if not args.index_dir:
                odqa.build_index(demo_file("demo_corpus.jsonl"), args.index, None, index_dir=root, quiet=True)
            for setting in (["on", "off"] if args.batching == "both" else [args.batching]):
                rows[f"batching {setting}"] = run(setting, args, root, questions)
    print(f"{args.clients} clients x {args.duration:g} s per setting, index {args.index}, reader {args.reader}, "
          f"max batch {args.max_batch_size}, max wait {args.max_wait_ms:g} ms, timeout {args.timeout:g} s")
    print("| setting | requests | errors | QPS | p50 s | p95 s | p99 s | mean batch | RSS before MB | RSS after MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    mb = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    for name, r in rows.items():
        print(f"| {name} | {r['requests']} | {r['errors']} | {r['qps']:.2f} | {r['p50']:.3f} | {r['p95']:.3f} | "
              f"{r['p99']:.3f} | {r['mean_batch']:.1f} | {mb(r['rss_before'])} | {mb(r['rss_after'])} |")
    for name, r in rows.items():
        print(f"{name}: answers by status {r['statuses']}, longest request {r['longest_s']:.2f} s")
    if any(r["errors"] for r in rows.values()):
        print("errors:", {n: r["error_kinds"] for n, r in rows.items() if r["errors"]})
        sys.exit(1)
    if args.overload and any(r["longest_s"] > args.timeout + 2 for r in rows.values()):
        print(f"a request took longer than the timeout + 2 s ({args.timeout + 2:g} s)")
        sys.exit(1)


if __name__ == "__main__":
    main()
