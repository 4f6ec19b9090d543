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
BASE = f"http://127.0.0.1:{PORT}"

SERVER_ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "billing_site.settings.production",
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
    seed = json.loads((OUT / "seed.json").read_text())
    common = {
        "BENCH_CUSTOMERS": str(OUT / "customers.txt"),
        "BENCH_METERS": ",".join(seed["meters"]),
        "BENCH_API_KEY": seed["api_key"],
        "BENCH_BATCH_SIZE": str(BATCH_SIZE),
    }

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
            ("batch", "batch.lua", BATCH_CONNECTIONS),
            ("single", "single.lua", SINGLE_CONNECTIONS),
        ]
        plan = [p for p in plan if not ONLY or p[0] == ONLY]
        for name, script, connections in plan:
            prefix = name[0]
            if WARMUP:
                log(f"warm-up {name}: {WARMUP}s, {connections} connections")
                wrk(script, connections, WARMUP, {**common, "BENCH_RUN": "w" + prefix}, server.pid)
            log(f"measure {name}: {DURATION}s, {connections} connections")
            results[name] = wrk(
                script, connections, DURATION, {**common, "BENCH_RUN": prefix}, server.pid
            )
            results[name]["connections"] = connections
    finally:
        if os.environ.get("BENCH_KEEP_SERVER") == "1":
            log(f"gunicorn left running: pid {server.pid} on {BASE}")
        else:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    counts = json.loads(run(PYTHON, str(BENCH / "bench_db.py"), "counts", env=db_env, capture=True))
    report(results, counts)


def report(results: dict[str, dict], counts: dict) -> None:
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
    print()
    print("RESULT: " + ("OK" if ok else "FAILED (see above)"))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
