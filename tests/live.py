"""Real server processes for tests: Uvicorn workers sharing the test database (and Redis, when
the suite runs with REDIS_URL), pointed at the fake upstream; and a small HTTP client that
logs in and reads SSE the way a browser does."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database, as a URL another process can open."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{connection.settings_dict['NAME']}"
    user, host, port = (
        db.get("USER") or "postgres",
        db.get("HOST") or "127.0.0.1",
        db.get("PORT") or 5432,
    )
    return f"postgres://{user}@{host}:{port}/{connection.settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Worker:
    """One `uvicorn chatapp.asgi:application` process."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Worker:
        self.log = Path(self.env["CHAT_VAR_DIR"]) / f"worker-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "chatapp.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a port until it answers; nothing else to wait on
        raise TimeoutError(f"worker on {self.port} did not answer /healthz")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_env(fake_base_url: str, api_key: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIMLAPI_", "GEMINI_", "SEGMIND_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        {
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # sessions made by the test work there too
            "DATABASE_URL": database_url(),
            "CHAT_VAR_DIR": str(settings.VAR_DIR),
            "STATIC_ROOT": str(settings.STATIC_ROOT),
            "AIMLAPI_API_KEY": api_key,
            "AIMLAPI_BASE_URL": fake_base_url,
            "CHAT_WORKER_HEARTBEAT_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


class Browser:
    """Cookies, CSRF and SSE over plain HTTP, against any worker."""

    def __init__(self, user, at: Worker) -> None:
        """Logged in as `user` through a session in the shared database (the workers check
        passwords with production hashers, the test suite with a fast one)."""
        from django.test import Client

        client = Client()
        client.force_login(user)
        self.client = httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self.client.cookies.set("sessionid", client.cookies["sessionid"].value)
        self.client.get(f"{at.url}/")  # sets the csrftoken cookie

    def post(self, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(
            url,
            data=data or {},
            headers={"X-CSRFToken": self.client.cookies["csrftoken"], "HX-Request": "true"},
        )

    def send(
        self, worker: Worker, text: str, model: str = "aimlapi:google/gemini-2.5-flash"
    ) -> tuple[str, str]:
        conversation = str(uuid.uuid4())
        response = self.post(
            f"{worker.url}/c/{conversation}/messages/",
            {"text": text, "idempotency_key": str(uuid.uuid4()), "model": model},
        )
        assert response.status_code == 200, response.text[:500]
        path = re.search(r'sse-connect="([^"]+)"', response.text).group(1).replace("&amp;", "&")
        return conversation, path

    def stream(
        self, worker: Worker, path: str, last_event_id: str | None = None
    ) -> Iterator[tuple[str, str, str | None]]:
        """(event, data, id) per SSE event; ("comment", text, None) for comments."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        with self.client.stream(
            "GET", f"{worker.url}{path}", headers=headers, timeout=httpx.Timeout(15.0)
        ) as response:
            assert response.status_code == 200, response.status_code
            event, data, event_id = "message", [], None
            for line in response.iter_lines():
                if line.startswith(":"):
                    yield "comment", line[1:].strip(), None
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    yield event, "\n".join(data), event_id
                    event, data, event_id = "message", [], None
