"""S12: exporting every conversation of a person (`exchange.export.conversations_zip`, the
"Export all conversations" download): 100,000 messages in 500 conversations of 200, with 50
images, through the real server. The server's resident memory before and at its peak
(VmHWM, read from /proc), the time to the last byte and the zip's size; and, in a process
of its own, the export's Python allocations at their peak (tracemalloc) over the same rows.

    python -m bench.exchange seed --messages N --conversations C   # (app env) prints the account
    python -m bench.exchange trace --username U                    # (app env) tracemalloc
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from .procs import PYTHON, ROOT, AppConfig, start_app

PASSWORD = "Bench-Exchange-Pw-1!"
MESSAGES, CONVERSATIONS, IMAGES = 100_000, 500, 50


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
    django.setup()


def seed(messages: int, conversations: int, images: int) -> dict[str, Any]:
    """The account and its conversations, written as the app writes them (one path each,
    answers with their HTML and records), a few images in first prompts."""
    _django()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bench.history import ANSWERS, QUESTIONS
    from chatapp import rendering
    from chatapp.attachments.models import MessageAttachment
    from chatapp.attachments.services import attachment_create
    from chatapp.models import Conversation, Message
    from tests import imagegen

    username = f"bench-exchange-{uuid.uuid4().hex[:6]}"
    owner = get_user_model().objects.create_user(username=username, password=PASSWORD)
    html = {text: rendering.render_markdown(text) for text in ANSWERS}
    per = messages // conversations
    start = timezone.now() - timedelta(days=60)
    attachments = [
        attachment_create(owner=owner, upload=io.BytesIO(imagegen.png(320, 240 + n)))
        for n in range(images)
    ]
    links: list[MessageAttachment] = []
    for c in range(conversations):
        conversation = Conversation.objects.create(
            owner=owner,
            title=f"Exchange {c}: {QUESTIONS[c % 3]}",
            route="aimlapi",
            model="google/gemini-2.5-flash",
            created_at=start + timedelta(hours=c),
            updated_at=start + timedelta(hours=c, minutes=per),
        )
        rows: list[Message] = []
        for i in range(per):
            answer = i % 2 == 1
            text = ANSWERS[i % 3] if answer else QUESTIONS[i % 3]
            rows.append(
                Message(
                    id=uuid.uuid4(),
                    conversation=conversation,
                    parent_id=rows[-1].pk if rows else None,
                    role="assistant" if answer else "user",
                    content=text,
                    content_html=html[text] if answer else "",
                    html_version=rendering.RENDERER_VERSION if answer else 0,
                    status="complete",
                    route="aimlapi" if answer else "",
                    model="google/gemini-2.5-flash" if answer else "",
                    prompt_tokens=120 if answer else None,
                    completion_tokens=340 if answer else None,
                    ttft_ms=250 if answer else None,
                    duration_ms=1800 if answer else None,
                    finish_reason="stop" if answer else "",
                    created_at=start + timedelta(hours=c, seconds=i),
                )
            )
        Message.objects.bulk_create(rows, batch_size=1000)
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=rows[-1].pk)
        if c < len(attachments):
            links.append(MessageAttachment(message=rows[0], attachment=attachments[c], position=0))
    MessageAttachment.objects.bulk_create(links)
    return {
        "username": username,
        "messages": per * conversations,
        "conversations": conversations,
        "images": len(links),
    }


def trace(username: str) -> dict[str, Any]:
    """The export's own allocations at their peak, consumed as a server would send it."""
    _django()
    import resource
    import tracemalloc

    from django.contrib.auth import get_user_model

    from chatapp.exchange.export import conversations_zip

    owner = get_user_model().objects.get(username=username)
    tracemalloc.start()
    started = time.perf_counter()
    size = 0
    for piece in conversations_zip(owner):
        size += len(piece)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "tracemalloc_peak_kb": peak // 1024,
        "seconds_with_tracemalloc": round(seconds, 2),
        "zip_bytes": size,
        "process_max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _status(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def _log_in(port: int, username: str) -> str:
    """A session cookie, through the log-in form as a browser gets one."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", "/accounts/login/")
    page = connection.getresponse()
    body = page.read()
    csrf = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie") or "")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert csrf is not None, "no CSRF cookie from the log-in page"
    assert token is not None, "no CSRF token on the log-in page"
    form = f"csrfmiddlewaretoken={token.group(1).decode()}&username={username}&password={PASSWORD}"
    connection.request(
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf.group(1)}",
        },
    )
    done = connection.getresponse()
    done.read()
    session = re.search(r"sessionid=([^;]+)", done.getheader("Set-Cookie") or "")
    assert done.status == 302, f"log-in failed: {done.status}"
    assert session is not None, "no session cookie after the log-in"
    return f"sessionid={session.group(1)}"


def _download(port: int, cookie: str, pid: int) -> dict[str, Any]:
    """GET /export/ to the last byte, the server's memory sampled meanwhile."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            samples.append(_status(pid)["VmRSS"])

    before = _status(pid)
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("GET", "/export/", headers={"Cookie": cookie})
    response = connection.getresponse()
    first_byte: float | None = None
    body = bytearray()
    while piece := response.read(1 << 16):
        if first_byte is None:
            first_byte = time.perf_counter() - started
        body += piece
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    after = _status(pid)
    archive = zipfile.ZipFile(io.BytesIO(bytes(body)))
    names = archive.namelist()
    messages = sum(
        len(json.loads(archive.read(n))["messages"]) for n in names if n.endswith(".json")
    )
    return {
        "status": response.status,
        "seconds": round(seconds, 2),
        "first_byte_ms": round(1000 * (first_byte or 0), 1),
        "zip_bytes": len(body),
        "entries": len(names),
        "messages_in_zip": messages,
        "server_rss_before_kb": before["VmRSS"],
        "server_peak_rss_kb": after["VmHWM"],
        "server_peak_growth_kb": after["VmHWM"] - before["VmRSS"],
        "server_rss_sampled_max_kb": max(samples, default=before["VmRSS"]),
        "server_hwm_before_kb": before["VmHWM"],
    }


def _script(env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "bench.exchange", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.exchange {argv[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(
    config: AppConfig,
    workdir: Path,
    env: dict[str, str],
    messages: int = MESSAGES,
    conversations: int = CONVERSATIONS,
) -> dict[str, Any]:
    started = time.perf_counter()
    seeded = _script(
        env,
        "seed",
        "--messages",
        str(messages),
        "--conversations",
        str(conversations),
        "--images",
        str(IMAGES),
    )
    seeded["seed_seconds"] = round(time.perf_counter() - started, 1)
    traced = _script(env, "trace", "--username", seeded["username"])
    app = start_app(config, workdir, env)
    try:
        cookie = _log_in(app.port, seeded["username"])
        # A first, small request warms the server as one that has served pages is warm.
        warm = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
        warm.request("GET", "/import/", headers={"Cookie": cookie})
        warm.getresponse().read()
        served = _download(app.port, cookie, app.proc.pid)
    finally:
        app.stop()
    return {
        "database": "postgresql" if env.get("DATABASE_URL") else "sqlite",
        **seeded,
        "served": served,
        "in_process": traced,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.exchange")
    parser.add_argument("mode", choices=["seed", "trace"])
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--username", default="")
    args = parser.parse_args()
    if args.mode == "seed":
        print(json.dumps(seed(args.messages, args.conversations, args.images)))
    else:
        print(json.dumps(trace(args.username)))
    sys.exit(0)
