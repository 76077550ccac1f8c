"""The benchmark's Markdown report and chart, from the results of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def _rung(results: dict[str, Any], count: int) -> dict[str, Any] | None:
    return next((r for r in results.get("S2", []) if r["streams"] == count), None)


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    ladder = results.get("S2", [])
    at200 = _rung(results, 200) or (ladder[-1] if ladder else None)
    if at200:
        probes = at200.get("probes") or {}
        added = probes.get("added_ttft_ms") or at200["added"]["ttft_ms"]
        burst = at200["added"]["ttft_ms"]
        ok = None if added["p50"] is None else added["p50"] <= 3 and added["p99"] <= 10
        rows.append(
            (
                f"added time to first token ({at200['streams']} streams)",
                "p50 ≤ 3 ms, p99 ≤ 10 ms",
                f"p50 {_f(added['p50'])} ms, p99 {_f(added['p99'])} ms for a stream started while "
                f"{at200['streams']} run; p50 {_f(burst['p50'])} ms, p99 {_f(burst['p99'])} ms "
                "for the 100-per-second arrivals that started them",
                _verdict(ok),
            )
        )
    top = ladder[-1] if ladder else None
    if top:
        chunk = top["added"]["chunk_latency_ms"]
        ok = top["app"]["errors"] == 0 and top["streams"] >= 500 and (chunk["p99"] or 1e9) <= 16
        rows.append(
            (
                "capacity, one-token streams at 50 tok/s",
                "≥ 500 streams, added per-token p99 ≤ 16 ms",
                f"{top['streams']} streams, {top['app']['errors']} errors, added p99 {_f(chunk['p99'])} ms",
                _verdict(ok),
            )
        )
    gemini = results.get("S2_gemini")
    if gemini:
        chunk = gemini["added"]["chunk_latency_ms"]
        ok = (
            gemini["app"]["errors"] == 0
            and gemini["streams"] >= 1000
            and (chunk["p99"] or 1e9) <= 16
        )
        rows.append(
            (
                "capacity, Gemini-style 8-token chunks",
                "≥ 1,000 streams, added per-token p99 ≤ 16 ms",
                f"{gemini['streams']} streams, {gemini['app']['errors']} errors, added p99 {_f(chunk['p99'])} ms",
                _verdict(ok),
            )
        )
    if top:
        server = top["server"]
        rows.append(
            (
                f"cost ({top['streams']} streams)",
                "≤ 40 µs CPU per relayed event, ≤ 64 KB RSS per stream",
                f"{_f((server.get('steady') or {}).get('cpu_us_per_upstream_chunk'))} µs per upstream chunk in steady state "
                f"({_f(server['cpu_us_per_upstream_chunk'])} µs with POSTs and connects), "
                f"{_f(server['rss_kb_per_stream'])} KB per stream",
                _verdict(
                    ((server.get("steady") or {}).get("cpu_us_per_upstream_chunk") or 1e9) <= 40
                    and server["rss_kb_per_stream"] <= 64
                ),
            )
        )
    writes = results.get("S6")
    if writes:
        worst = max(
            writes["messages"],
            key=lambda m: m["run"]["updates_message"] - int(m["duration_s"]),
        )
        per_char = [
            m["run"]["bytes_sent_in_writes"] / m["answer_chars"] for m in writes["messages"]
        ]
        ok = all(
            m["run"]["updates_message"] <= 3 + int(m["duration_s"]) + 1 for m in writes["messages"]
        )
        rows.append(
            (
                f"writes ({writes['vendor']})",
                "≤ 3 statements per message + ≤ 1 checkpoint per second; bytes linear in length",
                f"{worst['run']['updates_message']} UPDATEs for a {worst['duration_s']:g} s answer; "
                f"{min(per_char):.2f}–{max(per_char):.2f} bytes written per answer character",
                _verdict(ok and max(per_char) / min(per_char) < 1.5),
            )
        )
    history = results.get("S8")
    if history:
        page, side = history["conversation_page"], history["new_chat_page_with_sidebar"]
        ok = (
            page["ms_p50"] <= 50
            and page["bytes"] <= 100_000
            and page["queries"] <= 8
            and side["ms_p50"] <= 30
        )
        rows.append(
            (
                "history",
                "5,000-message page ≤ 50 ms, ≤ 100 KB, ≤ 8 queries; 1,000-conversation sidebar ≤ 30 ms",
                f"page {page['ms_p50']} ms, {page['bytes'] / 1000:.0f} KB, {page['queries']} queries; "
                f"sidebar page {side['ms_p50']} ms",
                _verdict(ok),
            )
        )
        switches, turns = history.get("version_switch"), history.get("turn_start")
        if switches and turns:
            # Each direction on its own: switching back to the main path near the root walks
            # the whole tree below, switching away from it a short branch.
            slowest = max(
                case[way]["ms_p50"] for case in switches.values() for way in ("to_other", "to_main")
            )
            ok = slowest <= 30 and turns["equal"]
            rows.append(
                (
                    f"message tree ({history.get('branch_points')} branch points)",
                    "switching a version ≤ 30 ms; a turn at any depth costs the queries of a "
                    "fresh conversation's",
                    "switch p50 (to the older version / back to the main one) "
                    + ", ".join(
                        f"{name} {case['to_other']['ms_p50']} / {case['to_main']['ms_p50']} ms"
                        + (" (thread)" if case["to_main"]["response"] == "thread" else "")
                        for name, case in switches.items()
                    )
                    + f"; turn_start {turns['deep']['queries']} queries at depth "
                    f"{turns['deep']['follows_depth']:,}, {turns['fresh']['queries']} in a fresh "
                    "conversation",
                    _verdict(ok),
                )
            )
    browser = results.get("S9")
    if browser:
        normal, slow = browser["normal"], browser["throttled_4x"]
        ok = (
            normal["main_thread_ms_per_token"] <= 0.7
            and slow["long_tasks"] == 0
            and normal["end_lag_ms"] <= 100
        )
        rows.append(
            (
                "browser",
                "≤ 0.7 ms main thread per token, 0 long tasks at 4× throttle, end lag ≤ 100 ms",
                f"{_f(normal['main_thread_ms_per_token'], 3)} ms/token ({_f(slow['main_thread_ms_per_token'], 3)} at 4×), "
                f"{slow['long_tasks']} long tasks at 4×, end lag {_f(normal['end_lag_ms'])} ms "
                f"({_f(slow['end_lag_ms'])} at 4×)",
                _verdict(ok),
            )
        )
    stop = (results.get("S4") or {}).get("stop")
    if stop:
        close = stop["stop_to_upstream_close_ms"]
        rows.append(
            (
                "stop",
                "upstream connection closed ≤ 100 ms after Stop",
                f"p50 {_f(close['p50'])} ms, max {_f(close['max'])} ms ({close['measured']} streams)",
                _verdict(close["max"] is not None and close["max"] <= 100),
            )
        )
    return rows


def render(results: dict[str, Any], chart: Path | None = None) -> str:
    config = results["config"]
    lines = [
        f"# Benchmark report — {results['name']}, {results['date']}",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, Python {results['machine']['python']}. "
        f"App: {config['server']}, {config['database']}, {config['channel_layer']} channel layer"
        + (f", {config['extra_env']}" if config.get("extra_env") else "")
        + ". Every figure marked *added* is the app minus a direct client reading the same fake "
        "upstream in the same run.",
        "",
        "| metric | target | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(results)]
    probed = [r for r in results.get("S2", []) if r.get("probes")]
    if probed:
        lines += [
            "",
            "## Time to first token of a stream started while the others run (S2 probes)",
            "",
            "| streams running | direct p50/p99 ms | app p50/p99 ms | added p50/p99 ms |",
            "|---|---|---|---|",
        ]
        for r in probed:
            pr = r["probes"]
            lines.append(
                f"| {r['streams']} | {_f(pr['direct_ttft_ms']['p50'])} / {_f(pr['direct_ttft_ms']['p99'])} "
                f"| {_f(pr['app_ttft_ms']['p50'])} / {_f(pr['app_ttft_ms']['p99'])} "
                f"| {_f(pr['added_ttft_ms']['p50'])} / {_f(pr['added_ttft_ms']['p99'])} |"
            )
    ladder = (
        results.get("S1", [])
        + results.get("S2", [])
        + ([results["S2_gemini"]] if results.get("S2_gemini") else [])
    )
    if ladder:
        lines += [
            "",
            "## Streams (S1, S2)",
            "",
            "| streams | tok/s | tokens/chunk | TTFT direct p50/p99 ms | TTFT app p50/p99 ms | added TTFT p50/p99 ms "
            "| chunk latency direct p50/p99 ms | app p50/p99 ms | added p50/p99 ms | server CPU µs/chunk (all / steady) "
            "| steady cores | RSS KB/stream | errors | cores used: server / fake / client |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in ladder:
            d, a, x, s = r["direct"], r["app"], r["added"], r["server"]
            lines.append(
                f"| {r['streams']} | {r['rate']:g} | {r['chunk']} "
                f"| {_f(d['ttft_ms']['p50'])} / {_f(d['ttft_ms']['p99'])} "
                f"| {_f(a['ttft_ms']['p50'])} / {_f(a['ttft_ms']['p99'])} "
                f"| {_f(x['ttft_ms']['p50'])} / {_f(x['ttft_ms']['p99'])} "
                f"| {_f(d['chunk_latency_ms']['p50'], 2)} / {_f(d['chunk_latency_ms']['p99'], 2)} "
                f"| {_f(a['chunk_latency_ms']['p50'], 2)} / {_f(a['chunk_latency_ms']['p99'], 2)} "
                f"| {_f(x['chunk_latency_ms']['p50'], 2)} / {_f(x['chunk_latency_ms']['p99'], 2)} "
                f"| {_f(s['cpu_us_per_upstream_chunk'])} / {_f((s.get('steady') or {}).get('cpu_us_per_upstream_chunk'))} "
                f"| {_f((s.get('steady') or {}).get('cpu_cores'), 2)} | {_f(s['rss_kb_per_stream'])} | {a['errors']} "
                f"| {_f((r.get('harness') or {}).get('server_cores'), 2)} / {_f((r.get('harness') or {}).get('fake_cores'), 2)} "
                f"/ {_f((r.get('harness') or {}).get('client_cores'), 2)} |"
            )
    writes = results.get("S6")
    if writes:
        lines += [
            "",
            f"## Writes per streamed message (S6, {writes['vendor']})",
            "",
            "| tokens | tok/s | duration s | answer chars | turn start: statements / writes | run: UPDATEs | bytes sent in writes | WAL bytes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in writes["messages"]:
            lines.append(
                f"| {m['tokens']} | {m['rate']:g} | {m['duration_s']} | {m['answer_chars']} "
                f"| {m['turn_start']['statements']} / {m['turn_start']['writes']} | {m['run']['updates_message']} "
                f"| {m['run']['bytes_sent_in_writes']} | {_f(m.get('wal_bytes_during_run'))} |"
            )
    history = results.get("S8")
    if history:
        lines += [
            "",
            "## History (S8)",
            "",
            "| page | ms p50 | ms max | bytes | queries |",
            "|---|---|---|---|---|",
        ]
        rows = [("5,000-message conversation", history["conversation_page"])]
        rows += [(f"older page {i + 1}", p) for i, p in enumerate(history["older_pages"])]
        rows.append(("new chat, 1,000-conversation sidebar", history["new_chat_page_with_sidebar"]))
        lines += [
            f"| {name} | {p['ms_p50']} | {p['ms_max']} | {p['bytes']} | {p['queries']} |"
            for name, p in rows
        ]
        switches = history.get("version_switch")
        if switches:
            lines += [
                "",
                f"Switching a version (POST message-show, server time; {history['conversation_messages']:,} "
                f"messages, main path {history['main_path']:,}, {history['branch_points']} branch "
                "points). *thread*: the branch below is longer than a page, so the view answers "
                "with the thread's last page in place of all it shows (timed here).",
                "",
                "| fork | depth | main path from it | switch to | response | ms p50 | ms max | bytes | queries |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for name, case in switches.items():
                for target, label in (("to_other", "older version"), ("to_main", "main version")):
                    t = case[target]
                    lines.append(
                        f"| {name} | {case['depth']:,} | {case['main_below']:,} | {label} | "
                        f"{t['response']} | {t['ms_p50']} | {t['ms_max']} | {t['bytes']} | "
                        f"{t['queries']} |"
                    )
        turns = history.get("turn_start")
        if turns:
            lines += [
                "",
                "`turns.services.turn_start` (the service alone, no run):",
                "",
                "| turn follows | depth | queries | ms p50 | ms max |",
                "|---|---|---|---|---|",
            ]
            for name, label in (
                ("deep", "the long conversation's leaf"),
                ("fresh", "a fresh conversation's first turn"),
            ):
                t = turns[name]
                lines.append(
                    f"| {label} | {t['follows_depth']:,} | {t['queries']} | {t['ms_p50']} | {t['ms_max']} |"
                )
    stop = results.get("S4")
    if stop:
        lines += ["", "## Stop and disconnect (S4)", "", f"```\n{stop}\n```"]
    browser = results.get("S9")
    if browser:
        lines += ["", "## Browser (S9)", "", f"```\n{browser}\n```"]
    render_cpu = results.get("S10")
    if render_cpu:
        lines += [
            "",
            f"## Rendering CPU per answer (S10, pieces of {render_cpu['piece_chars']} characters)",
            "",
            "| answer | frames | streamed, block by block ms | final render ms | ratio | one pass ms |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['chars']:,} chars | {row['frames']:,} | {row['streamed_ms']} | "
            f"{row['whole_ms']} | {row['ratio']}x | {row['one_pass_ms']} |"
            for row in render_cpu["rows"]
        ]
    found = results.get("S11")
    if found:
        writes = found["writes"]
        lines += [
            "",
            f"## Search (S11, {found['database']})",
            "",
            f"{found['messages']:,} messages in {found['conversations']:,} conversations (and "
            'another person\'s 10%): "Search conversations" through the view, server time '
            f"p50 {found['ms_p50']} ms, p95 {found['ms_p95']} ms, max {found['ms_max']} ms "
            "(target p95 ≤ 50 ms).",
            "",
            "| query | ms p50 | results | queries |",
            "|---|---|---|---|",
            *(
                f"| {name} | {case['ms_p50']} | {case['results']} | {case['queries']} |"
                for name, case in found["cases"].items()
            ),
            "",
            "Keeping the index in step, per write (median ms, with the index / without): a "
            f"finished message inserted {writes['insert_ms'][0]} / {writes['insert_ms'][1]} "
            f"(+{writes['extra_insert_ms']}), a streamed answer's final UPDATE "
            f"{writes['final_update_ms'][0]} / {writes['final_update_ms'][1]} "
            f"(+{writes['extra_final_update_ms']}); checkpoints while it streams cost nothing "
            "extra (an answer is indexed once it is final).",
        ]
    export = results.get("S12")
    if export:
        served, traced = export["served"], export["in_process"]
        lines += [
            "",
            f"## Export all conversations (S12, {export['database']})",
            "",
            f"{export['messages']:,} messages in {export['conversations']:,} conversations, "
            f"{export['images']} images: a {served['zip_bytes'] / 1e6:.1f} MB zip in "
            f"{served['seconds']} s (first byte {served['first_byte_ms']} ms). Server RSS "
            f"{served['server_rss_before_kb'] / 1024:.0f} MB before, peak "
            f"{served['server_peak_rss_kb'] / 1024:.0f} MB (+{served['server_peak_growth_kb'] / 1024:.1f} MB); "
            f"the export's own allocations peak at {traced['tracemalloc_peak_kb'] / 1024:.1f} MB "
            "(tracemalloc, in a process of its own).",
        ]
    if chart is not None:
        lines += ["", f"![added latency against concurrency]({chart.name})"]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> Path | None:
    ladder = results.get("S2", [])
    if len(ladder) < 2:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    counts = [r["streams"] for r in ladder]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for q, style in (("p50", "o-"), ("p99", "s--")):
        axes[0].plot(
            counts, [r["added"]["ttft_ms"][q] for r in ladder], style, label=f"added TTFT {q}"
        )
        axes[1].plot(
            counts,
            [r["added"]["chunk_latency_ms"][q] for r in ladder],
            style,
            label=f"added per-chunk {q}",
        )
    axes[0].axhline(3, color="grey", linewidth=0.8, linestyle=":")
    axes[0].axhline(10, color="grey", linewidth=0.8, linestyle=":")
    axes[1].axhline(16, color="grey", linewidth=0.8, linestyle=":")
    for ax, title in zip(axes, ("time to first token", "per chunk"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("added latency (ms)")
        ax.set_title(f"Added {title} vs. direct client")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
