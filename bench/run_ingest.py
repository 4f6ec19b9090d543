"""Ingest benchmark: gunicorn + PostgreSQL under wrk, batch stream and single-event endpoints.

Run it through `bash bench/ingest.sh` (or `make bench-ingest`), which installs wrk if needed.
Every knob is an environment variable (defaults in brackets):

    BENCH_PG_URL     server, no database [postgres://postgres@127.0.0.1:5432]
    BENCH_DB         database, dropped and re-created [billing_bench]
    BENCH_PORT       [8765]
    BENCH_WORKERS    gunicorn workers [3]
    BENCH_WORKER_CLASS  sync | gthread [sync]
    BENCH_THREADS    threads per gthread worker [1]
    BENCH_DURATION   seconds of measurement per endpoint [15]
    BENCH_WARMUP     seconds of warm-up per endpoint [3]
    BENCH_BATCH_CONNECTIONS / BENCH_SINGLE_CONNECTIONS  wrk connections [6 / 6]
    BENCH_WRK_THREADS  [1]
    BENCH_BATCH_SIZE events per stream request [100]
    BENCH_ONLY       batch | single (default: both)
    BENCH_GUNICORN_ARGS  extra gunicorn arguments, e.g. "--config bench/extra.py"
    BENCH_SQL        SQL to run after seeding, for experiments (e.g. "DROP INDEX ...")
    BENCH_KEEP_SERVER=1  leave gunicorn running afterwards (to attach py-spy, for instance)
    BENCH_CEILING_CHUNKS events per COPY + fold in the fold ceilings [BENCH_BATCH_SIZE,1000]
    BENCH_CEILING_STREAMS  parallel connections folding [1]
    BENCH_VISIBILITY=0   skip the visible-in-usage probe

It calibrates itself in the same run: the batch rate is reported as a fraction of the fold
ceiling (COPY into a staging table + the store's one set-based statement, no web server:
`ingest_probes.py fold`), the single-event rate as a fraction of a trivial one-INSERT Django
view served by the same gunicorn and settings (`ingest_urls.py`, bench-only). During the batch
measurement a probe measures how long after its accepting response an event counts in
`usage()`; at the end the peak RSS of the web workers is read from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
OUT = BENCH / ".run"


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


PG_URL = setting("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB = setting("BENCH_DB", "billing_bench")
PORT = int(setting("BENCH_PORT", "8765"))
WORKERS = int(setting("BENCH_WORKERS", "3"))
WORKER_CLASS = setting("BENCH_WORKER_CLASS", "sync")
THREADS = int(setting("BENCH_THREADS", "1"))
DURATION = int(setting("BENCH_DURATION", "15"))
WARMUP = int(setting("BENCH_WARMUP", "3"))
BATCH_CONNECTIONS = int(setting("BENCH_BATCH_CONNECTIONS", "6"))
SINGLE_CONNECTIONS = int(setting("BENCH_SINGLE_CONNECTIONS", "6"))
WRK_THREADS = int(setting("BENCH_WRK_THREADS", "1"))
BATCH_SIZE = int(setting("BENCH_BATCH_SIZE", "100"))
ONLY = setting("BENCH_ONLY", "")
# The first chunk is the ratio's base; larger chunks fold more events per rollup row touched.
CEILING_CHUNKS = [int(c) for c in setting("BENCH_CEILING_CHUNKS", f"{BATCH_SIZE},1000").split(",")]
CEILING_STREAMS = int(setting("BENCH_CEILING_STREAMS", "1"))
VISIBILITY = setting("BENCH_VISIBILITY", "1") != "0"
TRIVIAL_PATH = "/bench/one_insert"
# Goals of issue 14 (2-core machine): single events, and fractions of the ceilings.
SINGLE_GOAL, SINGLE_RATIO_GOAL, BATCH_RATIO_REQUIRED, BATCH_RATIO_GOAL = 1500, 0.8, 0.65, 0.8
BASE = f"http://127.0.0.1:{PORT}"

SERVER_ENV = {
    **os.environ,
    # Production settings plus the bench-only calibration URL (bench/ingest_settings.py).
    "DJANGO_SETTINGS_MODULE": "bench.ingest_settings",
    "SECRET_KEY": "bench-" + secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Persistent connections: one PostgreSQL session per worker instead of one per request.
    "DATABASE_URL": f"{PG_URL}/{DB}?conn_max_age=600",
    "SECURE_SSL_REDIRECT": "false",
    "SECURE_HSTS_SECONDS": "0",
    "LOG_LEVEL": "WARNING",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def run(*args: str, env=SERVER_ENV, capture=False) -> str:
    result = subprocess.run(args, cwd=ROOT, env=env, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def http_post(path: str, token: str, body: bytes = b"", content_type: str = "") -> tuple[int, dict]:
    request = urllib.request.Request(BASE + path, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


# --- CPU accounting from /proc: who used the two cores during a run -------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int) -> tuple[str, int]:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    return comm, int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_snapshot(gunicorn_pid: int, wrk_pid: int | None) -> dict[str, int]:
    groups = {"gunicorn": 0, "wrk": 0, "postgres": 0, "other": 0}
    server = {gunicorn_pid} | _children(gunicorn_pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            comm, ticks = _proc_ticks(pid)
        except OSError:
            continue
        if pid in server:
            groups["gunicorn"] += ticks
        elif pid == wrk_pid:
            groups["wrk"] += ticks
        elif comm.startswith("postgres") or comm.startswith("postmaster"):
            groups["postgres"] += ticks
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    groups["_total"] = sum(cpu[:8])
    groups["_idle"] = cpu[3] + cpu[4]
    return groups


def cpu_split(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    elapsed = after["_total"] - before["_total"]  # all cores
    ncpu = os.cpu_count() or 1
    wall = elapsed / ncpu / CLK_TCK
    split = {
        k: (after[k] - before[k]) / CLK_TCK / wall * 100 for k in ("gunicorn", "wrk", "postgres")
    }
    busy = (elapsed - (after["_idle"] - before["_idle"])) / CLK_TCK / wall * 100
    split["other"] = max(0.0, busy - sum(split.values()))
    split["idle"] = (after["_idle"] - before["_idle"]) / CLK_TCK / wall * 100
    return split  # percent of one core; the machine has ncpu * 100


# --- wrk ------------------------------------------------------------------------------------


def wrk(script: str, connections: int, seconds: int, env: dict[str, str], gunicorn_pid: int):
    args = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{max(connections, WRK_THREADS)}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / script),
        BASE,
    ]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **env, "BENCH_DIR": str(BENCH)},
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    before = cpu_snapshot(gunicorn_pid, proc.pid)
    # Sample just before wrk ends so its exit doesn't count.
    time.sleep(max(0.0, seconds - 0.8))
    after = cpu_snapshot(gunicorn_pid, proc.pid)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out}")
    stats: dict[str, float] = {}
    for line in out.splitlines():
        match = re.match(r"BENCH (\w+)=(\S+)", line)
        if match:
            key, value = match.groups()
            try:
                stats[key] = float(value)
            except ValueError:
                stats[key] = value  # type: ignore[assignment]
    if "requests" not in stats:
        raise SystemExit(f"no summary in wrk's output:\n{out}")
    stats["cpu"] = cpu_split(before, after)  # type: ignore[assignment]
    return stats


# --- main -----------------------------------------------------------------------------------


def start_gunicorn() -> subprocess.Popen:
    args = [
        str(VENV_BIN / "gunicorn"),
        "billing_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{PORT}",
        "--workers",
        str(WORKERS),
        "--worker-class",
        WORKER_CLASS,
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--error-logfile",
        str(OUT / "gunicorn.log"),
    ]
    if WORKER_CLASS == "gthread":
        args += ["--threads", str(THREADS)]
    args += os.environ.get("BENCH_GUNICORN_ARGS", "").split()
    log("gunicorn: " + " ".join(args[1:]))
    return subprocess.Popen(args, cwd=ROOT, env=SERVER_ENV, start_new_session=True)


def wait_ready(server: subprocess.Popen, api_key: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}); see {OUT / 'gunicorn.log'}")
        try:
            status, body = http_post("/v2/billing/meter_event_session", api_key)
        except OSError:
            time.sleep(0.2)
            continue
        if status != 200:
            raise SystemExit(f"meter_event_session: HTTP {status} {body}")
        return body["authentication_token"]
    raise SystemExit("gunicorn did not answer within 30 s")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    db_env = {**SERVER_ENV}
    run(PYTHON, str(BENCH / "bench_db.py"), "recreate", env=db_env)
    run(PYTHON, "manage.py", "migrate", "--noinput", "-v", "0", env=db_env)
    run(PYTHON, str(BENCH / "bench_db.py"), "seed", str(OUT), env=db_env)
    if os.environ.get("BENCH_SQL"):
        run(PYTHON, str(BENCH / "bench_db.py"), "sql", os.environ["BENCH_SQL"], env=db_env)
    run(PYTHON, str(BENCH / "bench_db.py"), "sql", TRIVIAL_TABLE_SQL, env=db_env)
    seed = json.loads((OUT / "seed.json").read_text())
    common = {
        "BENCH_CUSTOMERS": str(OUT / "customers.txt"),
        "BENCH_METERS": ",".join(seed["meters"]),
        "BENCH_API_KEY": seed["api_key"],
        "BENCH_BATCH_SIZE": str(BATCH_SIZE),
    }
    ceilings = {}
    if ONLY in ("", "batch"):
        for chunk in CEILING_CHUNKS:
            log(
                f"fold ceiling: {DURATION}s, COPY + fold of {chunk} events, "
                f"{CEILING_STREAMS} stream(s), no web server"
            )
            ceilings[chunk] = probe("fold", str(DURATION), str(chunk), str(CEILING_STREAMS))

    server = start_gunicorn()
    results: dict[str, dict] = {}
    try:
        token = wait_ready(server, seed["api_key"])
        common["BENCH_TOKEN"] = token
        # Smoke test: one batch through the stream, checked before any load.
        status, body = http_post(
            "/v2/billing/meter_event_stream",
            token,
            json.dumps(
                {
                    "events": [
                        {
                            "event_name": seed["meters"][0],
                            "identifier": "smoke-1",
                            "payload": {
                                "stripe_customer_id": (OUT / "customers.txt")
                                .read_text()
                                .split()[0],
                                "value": "1",
                            },
                        }
                    ]
                }
            ).encode(),
            "application/json",
        )
        if status != 200 or body.get("accepted") != 1:
            raise SystemExit(f"smoke test failed: HTTP {status} {body}")
        plan = [
            ("batch", "batch.lua", BATCH_CONNECTIONS, {}),
            ("single", "single.lua", SINGLE_CONNECTIONS, {}),
            ("trivial", "single.lua", SINGLE_CONNECTIONS, {"BENCH_SINGLE_PATH": TRIVIAL_PATH}),
        ]
        plan = [
            p for p in plan if not ONLY or p[0] == ONLY or (ONLY, p[0]) == ("single", "trivial")
        ]
        for name, script, connections, extra in plan:
            prefix = name[0]
            env = {**common, **extra}
            if WARMUP:
                log(f"warm-up {name}: {WARMUP}s, {connections} connections")
                wrk(script, connections, WARMUP, {**env, "BENCH_RUN": "w" + prefix}, server.pid)
            log(f"measure {name}: {DURATION}s, {connections} connections")
            prober = None
            if name == "batch" and VISIBILITY:
                prober = start_probe("visibility", str(DURATION), BASE, seed["api_key"])
            results[name] = wrk(
                script, connections, DURATION, {**env, "BENCH_RUN": prefix}, server.pid
            )
            results[name]["connections"] = connections
            if prober is not None:
                out, _ = prober.communicate(timeout=120)
                if prober.returncode != 0:
                    raise SystemExit(f"visibility probe failed ({prober.returncode})")
                results[name]["visibility"] = json.loads(out.strip().splitlines()[-1])
        memory = worker_memory(server.pid)
    finally:
        if os.environ.get("BENCH_KEEP_SERVER") == "1":
            log(f"gunicorn left running: pid {server.pid} on {BASE}")
        else:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    counts = json.loads(run(PYTHON, str(BENCH / "bench_db.py"), "counts", env=db_env, capture=True))
    report(results, counts, lambda: calibration(results, ceilings, memory))


TRIVIAL_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_one_insert (id bigserial PRIMARY KEY, body text)"
)


def probe(*args: str) -> dict:
    out = run(PYTHON, str(BENCH / "ingest_probes.py"), *args, capture=True)
    return json.loads(out.strip().splitlines()[-1])


def start_probe(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, str(BENCH / "ingest_probes.py"), *args],
        cwd=ROOT,
        env=SERVER_ENV,
        stdout=subprocess.PIPE,
        text=True,
    )


def worker_memory(gunicorn_pid: int) -> dict[str, float]:
    """Peak and current resident memory (MB) of the largest web worker, from /proc."""
    peak = current = 0.0
    for pid in _children(gunicorn_pid):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
            current = max(current, int(fields["VmRSS"].split()[0]) / 1024)
    return {"peak_rss_mb": peak, "rss_mb": current}


def calibration(results: dict[str, dict], ceilings: dict[int, dict], memory: dict) -> None:
    """Each figure with its ratio to the ceiling measured in this same run."""
    print()
    print("Calibrated (same run, same machine):")
    batch, single, trivial = (results.get(name) for name in ("batch", "single", "trivial"))
    for chunk, ceiling in ceilings.items() if batch else ():
        ratio = batch["events_per_s"] / ceiling["events_per_s"]
        print(
            f"  batch    {batch['events_per_s']:>9.0f} events/s = {ratio:.2f} of the fold "
            f"ceiling {ceiling['events_per_s']:.0f}/s (COPY + fold of {chunk}, "
            f"{CEILING_STREAMS} stream) [required {BATCH_RATIO_REQUIRED}, goal {BATCH_RATIO_GOAL}]"
        )
    if single and trivial:
        trivial_rate = trivial["requests"] / (trivial["duration_us"] / 1e6)
        ratio = single["events_per_s"] / trivial_rate
        print(
            f"  single   {single['events_per_s']:>9.0f} events/s = {ratio:.2f} of the one-INSERT "
            f"view {trivial_rate:.0f}/s [required {SINGLE_GOAL}/s, goal {SINGLE_RATIO_GOAL}]"
        )
    visible = (batch or {}).get("visibility")
    if visible:
        print(
            f"  visible in usage() after the accepting response: p50 {visible['p50_ms']:.1f} ms, "
            f"p99 {visible['p99_ms']:.1f} ms (batch {visible['batch_p99_ms']:.1f}, single "
            f"{visible['single_p99_ms']:.1f}), max {visible['max_ms']:.1f} ms over "
            f"{visible['probes']} probes under the batch load [required 1000, goal 200]"
        )
    print(
        f"  web worker memory: peak RSS {memory['peak_rss_mb']:.0f} MB "
        f"(now {memory['rss_mb']:.0f} MB), largest of the {WORKERS} workers"
    )
    (OUT / "calibration.json").write_text(
        json.dumps({"ceilings": ceilings, "memory": memory}, indent=2)
    )


def report(results: dict[str, dict], counts: dict, calibrated) -> None:
    ncpu = os.cpu_count()
    print()
    print(
        f"Ingest benchmark: gunicorn {WORKERS} x {WORKER_CLASS}"
        + (f" ({THREADS} threads)" if WORKER_CLASS == "gthread" else "")
        + f", PostgreSQL, wrk -t{WRK_THREADS}, {DURATION}s per endpoint, {ncpu} CPUs"
    )
    header = (
        f"{'endpoint':<8} {'conns':>5} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'rejected':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name, r in results.items():
        seconds = r["duration_us"] / 1e6
        per_request = BATCH_SIZE if name == "batch" else 1
        errors = int(
            r["bad_status"] + r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
        )
        r["events_per_s"] = r["accepted"] / seconds
        print(
            f"{name:<8} {r['connections']:>5} {r['requests'] / seconds:>9.0f} "
            f"{r['events_per_s']:>10.0f} {r['lat_p50_us'] / 1000:>8.1f} "
            f"{r['lat_p99_us'] / 1000:>8.1f} {int(r['rejected']):>8} {errors:>6}"
        )
        ok &= errors == 0 and r["rejected"] == 0
    print()
    print(
        "CPU while measuring (% of one core; the machine has "
        f"{ncpu * 100}%): gunicorn / postgres / wrk / other / idle"
    )
    for name, r in results.items():
        c = r["cpu"]
        print(
            f"  {name:<8} {c['gunicorn']:5.0f} / {c['postgres']:5.0f} / {c['wrk']:5.0f} / "
            f"{c['other']:5.0f} / {c['idle']:5.0f}"
        )
        if c["other"] > 20:
            print(
                f"  warning: other processes used {c['other']:.0f}% of a core during the "
                f"{name} run; its figures are low"
            )
    print()
    print("Database check (rows in metering_meterevent for each measured run):")
    for name, r in results.items():
        if name == "trivial":
            continue
        per_request = BATCH_SIZE if name == "batch" else 1
        rows = counts["by_run"].get(name[0], 0)
        accepted = int(r["accepted"])
        sent = int(r["sent"]) * per_request
        # wrk stops on the clock with one request in flight per connection: the server may still
        # commit those, but wrk never reads their responses. So the rows are the accepted events
        # plus at most one request per connection, and never more than what was sent.
        late = rows - accepted
        exact = accepted <= rows <= sent and late <= r["connections"] * per_request
        ok &= exact
        print(
            f"  {name:<8} accepted in responses {accepted}, rows {rows} "
            f"(+{late} committed after wrk's cut-off, <= {r['connections']} requests), "
            f"sent {sent} -> {'OK' if exact else 'MISMATCH'}"
        )
    print(
        f"  all events {counts['events']}, identifiers {counts['identifiers']}, "
        f"rollup event_count {counts['rollup_event_count']}, "
        f"rollup sums match: {counts['rollup_sums_match']}"
    )
    ok &= counts["events"] == counts["identifiers"] == counts["rollup_event_count"]
    ok &= bool(counts["rollup_sums_match"])
    (OUT / "results.json").write_text(json.dumps({"results": results, "counts": counts}, indent=2))
    calibrated()
    print()
    print("RESULT: " + ("OK" if ok else "FAILED (see above)"))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
