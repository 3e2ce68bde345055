"""Many users at once: N browser sessions (default 8) against one app server, each opening its own
demo analysis and clicking around; prints each session's wall time, the slowest, and the server's
peak memory (VmHWM) and model loads. Needs Chromium (apt-get install chromium) and Playwright.

    .venv/bin/python -m bench.bench_many_users [--users 8] [--out docs/bench_many_users.txt]

The sessions start together on an empty scene cache, so the first of each area also reads and
classifies its scenes; the server runs them in its script threads on this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from tests.app_server import start_app
from tests.many_users import MODEL_LOG_LINE, check, peak_rss_mb, plans, run_sessions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium"))
    ap.add_argument("--out", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    lines = [f"# bench_many_users: {args.users} sessions at once, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "streamlit.log"
        proc, url = start_app(Path(tmp) / "cache", log)
        try:
            idle_mb = peak_rss_mb(proc.pid)
            t0 = time.perf_counter()
            results = run_sessions(url, plans(args.users), args.chromium)
            wall = time.perf_counter() - t0
            peak_mb = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        loads = [ln for ln in log.read_text().splitlines() if ln.startswith(MODEL_LOG_LINE)]
    for r in results:
        lines.append(f"user {r.plan.user}: {r.plan.area:<12} via {r.plan.via:<4} level {r.plan.level:<5} "
                     f"{r.seconds:6.1f} s  {'ok' if not r.problems else '; '.join(r.problems)}")
    problems = check(results)
    secs = sorted(r.seconds for r in results)
    lines += [f"analyses at once (LULC_MAX_ANALYSES): {os.environ.get('LULC_MAX_ANALYSES') or 'default'}",
              f"median session: {secs[len(secs) // 2]:.1f} s; fastest {secs[0]:.1f} s",
              f"slowest session: {max(r.seconds for r in results):.1f} s (all {len(results)} started together; "
              f"wall {wall:.1f} s)",
              f"server peak RSS: {peak_mb:,.0f} MB (after start: {idle_mb:,.0f} MB)",
              f"model loads in the server log: {len(loads)} (per-window and dense model, shared by all sessions)",
              f"sessions that saw another's analysis or failed: {len(problems)}"]
    lines += [f"  {p}" for p in problems]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
