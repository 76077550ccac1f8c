"""S9: the browser's side of streaming, measured in Chromium through the DevTools protocol.

A conversation with 500 earlier messages (all loaded into the page), then an answer of 2,500
tokens at 250 tok/s: main-thread time per token, long tasks, and how late each piece becomes
visible (each chunk carries its send time from the fake upstream), at normal speed and with
the CPU throttled 4×.

    python -m bench.browser seed      # (with the app's environment) prints the seeded ids
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from .procs import PYTHON, ROOT, AppConfig, Process, start_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Bench-Browser-Pw-1!"
TOKENS, RATE = 2500, 250

# Runs before the page's own scripts: long tasks, when the send left, and the lag of every
# appended piece. Long tasks are kept with their start so that only the page's own count:
# Playwright's typing and actionability checks (fill, press) run in the page as tasks of
# their own, ~40 ms each at 4x throttle, before the send leaves. A task counts if it ends
# at or after the send, so the task that sends (the key press and htmx's work) is included.
PROBE = """
const seen = new Set();
window.__bench = {longTasks: [], sentAt: null, lags: [], lastAppend: 0};
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) window.__bench.longTasks.push([entry.startTime, entry.duration]);
}).observe({type: 'longtask', buffered: true});
document.addEventListener('htmx:beforeRequest', () => {
  if (window.__bench.sentAt === null) window.__bench.sentAt = performance.now();
});
new MutationObserver(records => {
  const now = performance.timeOrigin + performance.now();
  for (const record of records) {
    for (const node of record.addedNodes) {
      // Text never shown (replaced in the same task), and the live region that announces a
      // finished answer by its first words, are not pieces becoming visible. A piece counts
      // once, when it first shows: as text, or inside a block that closed before it did.
      if (!node.isConnected || node.nodeType !== 3 && node.nodeType !== 1) continue;
      if ((node.nodeType === 3 ? node.parentElement : node).closest('#announcer')) continue;
      for (const match of (node.nodeType === 3 ? node.data : node.textContent).matchAll(/⟦(\\d+)⟧/g)) {
        if (seen.has(match[1])) continue;
        seen.add(match[1]);
        window.__bench.lags.push(now - Number(match[1].slice(0, -6)) - Number('0.' + match[1].slice(-6)));
      }
      window.__bench.lastAppend = now;
    }
  }
}).observe(document, {subtree: true, childList: true});
"""


WAIT_FOR_ANSWER = """(index) => new Promise(resolve => {
  const thread = document.getElementById('thread');
  const done = () => {
    const answer = thread.querySelectorAll('article.msg-assistant')[index];
    return answer && !answer.hasAttribute('data-active');
  };
  if (done()) return resolve(true);
  // Only what can end the wait is observed: the streaming article becomes the final one in
  // place (app.js fillShell: its data-active goes), or #thread's own children change. A
  // subtree childList observer would run this query for every appended token, and that was
  // most of the "page's" script time once each token became its own event (pacing).
  const watches = [];
  const check = () => { if (done()) { watches.forEach(w => w.disconnect()); resolve(true); } };
  for (const options of [{childList: true}, {subtree: true, attributeFilter: ['data-active']}]) {
    const watch = new MutationObserver(check);
    watch.observe(thread, options);
    watches.push(watch);
  }
})"""


def seed() -> dict[str, Any]:
    """Create the account and the 500-message conversation (run with the app's env)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapp.settings")
    django.setup()
    from django.contrib.auth import get_user_model

    from bench.history import ANSWERS, QUESTIONS
    from chatapp import rendering
    from chatapp.models import Conversation, Message

    username = f"bench-browser-{uuid.uuid4().hex[:6]}"
    owner = get_user_model().objects.create_user(username=username, password=PASSWORD)
    conversation = Conversation.objects.create(
        owner=owner, title="Browser benchmark", route="aimlapi", model="google/gemini-2.5-flash"
    )
    html = {text: rendering.render_markdown(text) for text in ANSWERS}
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=1)
    # One path (docs/ARCHITECTURE.md, "The message tree"): each message follows the one
    # before it and the last is the current leaf: the branch shown holds all 500.
    rows: list[Message] = []
    for i in range(500):
        rows.append(
            Message(
                id=uuid.uuid4(),
                conversation=conversation,
                parent_id=rows[-1].pk if rows else None,
                role="user" if i % 2 == 0 else "assistant",
                content=QUESTIONS[i % 3] if i % 2 == 0 else ANSWERS[i % 3],
                content_html="" if i % 2 == 0 else html[ANSWERS[i % 3]],
                html_version=rendering.RENDERER_VERSION,
                status="complete",
                route="aimlapi",
                model="google/gemini-2.5-flash",
                created_at=start + timedelta(seconds=i),
            )
        )
    Message.objects.bulk_create(rows)
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=rows[-1].pk)
    return {"username": username, "conversation": str(conversation.id)}


def _renderer_main_threads() -> dict[int, float]:
    """CPU seconds used so far by the main thread of each Chromium renderer process (the
    main thread's id is the process id): the browser's own work, whatever it waited for."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if b"chromium" not in command or b"--type=renderer" not in command:
                continue
            fields = (entry / "task" / entry.name / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def _main_thread(trace: dict[str, Any]) -> dict[str, float]:
    """Busy time of the page's renderer main thread, by kind, from a Chromium trace.

    CDP's Performance.getMetrics "TaskDuration" counts more than the main thread (it read
    2.6 ms per token where the trace shows under 0.1), so the trace is the measure."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    busy: dict[str, float] = {}
    for e in events:
        if e.get("ph") == "X" and "dur" in e and (e.get("pid"), e.get("tid")) in mains:
            busy[e["name"]] = busy.get(e["name"], 0.0) + e["dur"] / 1000
    return busy


def _measure(browser: Any, page: Any, cdp: Any, throttle: float) -> dict[str, Any]:
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.evaluate(
        "window.__bench.longTasks = []; window.__bench.sentAt = null; window.__bench.lags = []"
    )
    answers = page.locator("article.msg-assistant")
    count = answers.count()
    cpu_before = _renderer_main_threads()
    browser.start_tracing(page=page, categories=["devtools.timeline"])
    # S9_PROFILE=<prefix>: the page's JavaScript profile and the trace of each stream, as
    # <prefix>-<throttle>x.cpuprofile and .trace.json (both open in Chromium's DevTools).
    profile = os.environ.get("S9_PROFILE", "") and f"{os.environ['S9_PROFILE']}-{throttle:g}x"
    if profile:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 100})
        cdp.send("Profiler.start")
    box = page.get_by_role("textbox", name="Message")
    box.fill(f"BENCH tokens={TOKENS} rate={RATE} chunk=1 ttft=0.3 #{uuid.uuid4().hex[:6]}")
    box.press("Enter")
    # Wait without polling: Playwright's expect() queries the page on every animation frame,
    # which would be measured as the page's own work. The end is the final answer replacing
    # the streaming one: its data-active attribute goes, or #thread's children change.
    page.evaluate(WAIT_FOR_ANSWER, count)
    if profile:
        Path(f"{profile}.cpuprofile").write_text(json.dumps(cdp.send("Profiler.stop")["profile"]))
    trace = browser.stop_tracing()
    if profile:
        Path(f"{profile}.trace.json").write_bytes(trace)
    busy = _main_thread(json.loads(trace))
    cpu_after = _renderer_main_threads()
    main_cpu_ms = 1000 * sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
    probe = page.evaluate("window.__bench")
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    lags = sorted(probe["lags"])
    sent_at = probe["sentAt"] or 0.0
    long_tasks = [duration for start, duration in probe["longTasks"] if start + duration >= sent_at]
    # CPU time of the renderer's main thread (CDP's TaskDuration and the trace's RunTask are
    # wall-clock durations: they counted 4-6 s for a stream that used 0.1 s of CPU).
    return {
        "cpu_throttle": throttle,
        "main_thread_ms_per_token": main_cpu_ms / TOKENS,
        "main_thread_ms_total": main_cpu_ms,
        "script_ms": busy.get("FunctionCall", 0.0) + busy.get("EventDispatch", 0.0),
        "layout_ms": busy.get("Layout", 0.0),
        "style_ms": busy.get("UpdateLayoutTree", 0.0),
        "paint_ms": busy.get("Paint", 0.0),
        "long_tasks": len(long_tasks),
        "longest_task_ms": max(long_tasks, default=0),
        "harness_long_tasks": len(probe["longTasks"]) - len(long_tasks),
        "pieces_seen": len(lags),
        "visible_lag_ms": {
            "p50": lags[len(lags) // 2] if lags else None,
            "p99": lags[int(len(lags) * 0.99)] if lags else None,
        },
        "end_lag_ms": lags[-1] if lags else None,
    }


def run(config: AppConfig, workdir: Path, env: dict[str, str], fake: Process) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    seeded = json.loads(
        subprocess.run(
            [PYTHON, "-m", "bench.browser", "seed"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    app = start_app(config, workdir, env)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(
                base_url=f"http://127.0.0.1:{app.port}", viewport={"width": 1280, "height": 900}
            )
            page.add_init_script(PROBE)
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill(seeded["username"])
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.goto(f"/c/{seeded['conversation']}/")
            from playwright.sync_api import expect

            while page.get_by_role("button", name="Load older messages").count():
                older = page.locator("article").count()
                page.get_by_role("button", name="Load older messages").click()
                expect(page.locator("article")).not_to_have_count(older)
            earlier = page.locator("article").count()
            cdp = page.context.new_cdp_session(page)
            normal = _measure(browser, page, cdp, 1)
            throttled = _measure(browser, page, cdp, 4)
            browser.close()
    finally:
        app.stop()
    return {
        "earlier_messages_in_page": earlier,
        "tokens": TOKENS,
        "rate": RATE,
        "normal": normal,
        "throttled_4x": throttled,
    }


if __name__ == "__main__" and sys.argv[1:] == ["seed"]:
    print(json.dumps(seed()))
