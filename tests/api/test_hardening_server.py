"""The shipped production server configuration survives slow clients.

Starts gunicorn with billing_site/gunicorn.conf.py and the production settings (on SQLite, which
is enough here: what is measured is the server, not the database), opens clients that send their
bodies at 1 byte a second, and checks that a normal request is still answered within a second.
With the old sync workers, 3 such clients stalled the whole API for as long as they kept sending.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _production_env(tmp_path: Path, port: int) -> dict[str, str]:
    drop = {"DATABASE_URL", "CACHE_URL", "REDIS_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "billing_site.settings.production",
            "SECRET_KEY": "slow-clients-" + "k9Xq2Lm7Pz4Rt8Vw1Ys6Nb3Hc5Jd0Fg" * 2,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            # One process: the threads alone must keep the API answering.
            "WEB_CONCURRENCY": "1",
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("production-server")
    port = _free_port()
    env = _production_env(tmp_path, port)
    _manage(env, "migrate", "--noinput", "-v0")
    secret = _manage(env, "create_api_key", "--name", "slow-clients").strip().splitlines()[-1]
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "billing_site/gunicorn.conf.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{url}/v1/customers", timeout=5)
                break
            assert time.monotonic() < deadline, "gunicorn did not start within 60 s"
            time.sleep(0.2)
        yield url, port, secret
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _send_slowly(port: int, secret: str, stop: threading.Event) -> None:
    body = b"name=" + b"s" * 55
    head = (
        "POST /v1/customers HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {secret}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        for index in range(len(body)):
            if stop.is_set():
                return
            sock.sendall(body[index : index + 1])
            stop.wait(1)


def test_a_normal_request_answers_within_a_second_while_slow_clients_send(production_server):
    url, port, secret = production_server
    stop = threading.Event()
    slow = [
        threading.Thread(target=_send_slowly, args=(port, secret, stop), daemon=True)
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in slow:
        thread.start()
    try:
        time.sleep(2.5)  # every slow client is connected and part-way through its body
        assert all(thread.is_alive() for thread in slow)
        for _ in range(3):
            started = time.monotonic()
            response = requests.get(
                f"{url}/v1/customers", headers={"Authorization": f"Bearer {secret}"}, timeout=10
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert elapsed < 1.0, f"a normal request took {elapsed:.2f} s behind slow clients"
        assert all(thread.is_alive() for thread in slow), "the slow clients were still sending"
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=5)


def test_the_shipped_configuration_uses_threaded_workers_with_timeouts():
    config: dict = {}
    source = (PROJECT_ROOT / "billing_site" / "gunicorn.conf.py").read_text()
    exec(compile(source, "gunicorn.conf.py", "exec"), config)
    assert config["worker_class"] == "gthread"
    assert config["threads"] >= SLOW_CLIENTS + 2
    assert 0 < config["timeout"] <= 60
    assert config["wsgi_app"] == "billing_site.wsgi:application"
