"""Open WebUI as a target of bench/peers.py (its API read from the installed package, 0.12.4).

Streams use its OpenAI-style `POST /api/chat/completions` with `stream: true` and no chat id:
the answer comes back on that response as `chat.completion.chunk`s (main.py's "legacy/direct"
path, utils/middleware.py's `stream_wrapper`). Accepting a message is what its own page does:
the same POST with the chat's id, the new user message and the answer's id, the earlier
messages in `messages` and a `session_id` (the page's socket): the turn is saved into the
chat, the answer runs as a background task (it would stream over Socket.IO) and the POST
answers with the task's id. The bench waits for each answer to be saved as done before the
next send, reading the chat back.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from .client import Response, StreamResult, openai_stream, request, timed_request
from .procs import free_port
from .targets import MODEL, Target, TreeProcess, peer_env, short_prompt, start_server


class OpenWebUI(Target):
    key = "open-webui"
    label = "Open WebUI"
    notes = [
        "`open-webui serve` (Uvicorn, UVICORN_WORKERS=1), SQLite in a fresh DATA_DIR each rep, "
        "OFFLINE_MODE, the first (admin) account's token; streams are `POST "
        "/api/chat/completions`, stream true, no chat id (its API path: the upstream's "
        "chunks passed through). Accepting a message: the POST its page sends (chat id, the "
        "new user message, the answer's id, a session id, the earlier messages in "
        "`messages`): it saves the turn into the chat and answers with the background "
        "task's id (the answer would stream over Socket.IO); 0 = a new chat. Each answer "
        "is awaited (the chat read back) before the next send.",
        "At startup it cannot load its default embedding model offline (logged as an "
        "error; not used here), and probes 127.0.0.1:11434 and :12434 for Ollama even with "
        "ENABLE_OLLAMA_API=false.",
    ]

    def start(self, rep: int) -> TreeProcess:
        assert self.venv is not None
        home = self.workdir / f"open-webui-{rep}"
        env = peer_env(self.venv, home)
        data = home / "data"
        data.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "DATA_DIR": str(data),
                "WEBUI_SECRET_KEY": uuid.uuid4().hex,
                "UVICORN_WORKERS": "1",
                "OPENAI_API_BASE_URL": f"http://127.0.0.1:{self.fake.port}/v1",
                "OPENAI_API_KEY": "bench",
                "ENABLE_OLLAMA_API": "false",
                # Nothing from the network: no model downloads, no version check, no telemetry.
                "OFFLINE_MODE": "true",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "ENABLE_VERSION_UPDATE_CHECK": "false",
                "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "false",
                "RAG_RERANKING_MODEL_AUTO_UPDATE": "false",
                "WHISPER_MODEL_AUTO_UPDATE": "false",
                "ANONYMIZED_TELEMETRY": "false",
                "DO_NOT_TRACK": "true",
                "SCARF_NO_ANALYTICS": "true",
                "ENABLE_OTEL": "false",
                # No extra model calls after a turn (the bench sends no background_tasks, too).
                "ENABLE_TITLE_GENERATION": "false",
                "ENABLE_TAGS_GENERATION": "false",
                "ENABLE_FOLLOW_UP_GENERATION": "false",
                "ENABLE_AUTOCOMPLETE_GENERATION": "false",
                "ENABLE_SEARCH_QUERY_GENERATION": "false",
                "ENABLE_RETRIEVAL_QUERY_GENERATION": "false",
                "GLOBAL_LOG_LEVEL": "WARNING",
            }
        )
        port = free_port()
        command = [
            str(self.venv / "bin" / "open-webui"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        self.process = start_server("open-webui", command, env, home, port, timeout=600)
        self.home: Path = home
        return self.process

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    async def _json(self, method: str, path: str, payload: Any = None) -> Any:
        assert self.process is not None
        body = b"" if payload is None else json.dumps(payload).encode()
        response: Response = await request(
            "127.0.0.1", self.process.port, method, path, self._headers(), body
        )
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {response.body[:200]!r}")
        return json.loads(response.body)

    async def setup(self) -> None:
        assert self.process is not None
        # The first account is the admin.
        self.token = ""
        signed = await self._json(
            "POST",
            "/api/v1/auths/signup",
            {
                "name": "Bench",
                "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                "password": "Bench-Password-1!",
            },
        )
        self.token = signed["token"]
        # Its models list comes from the fake's /v1/models.
        models = await self._json("GET", "/api/models")
        ids = [m.get("id") for m in models.get("data", [])]
        if MODEL not in ids:
            raise RuntimeError(f"{MODEL} not among Open WebUI's models: {ids[:5]}")

    async def stream(self, text: str) -> StreamResult:
        assert self.process is not None
        body = json.dumps(
            {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": text}]}
        ).encode()
        return await openai_stream(
            "127.0.0.1",
            self.process.port,
            "/api/chat/completions",
            body,
            {"Authorization": f"Bearer {self.token}"},
        )

    async def _send(
        self, chat_id: str, history: list[dict[str, Any]], parent: str | None
    ) -> tuple[float, str, str]:
        """One send as its page makes it, `history` (the earlier messages, as the page sends
        them) extended with the turn; (ms to the response head, chat id, answer id). A new
        chat when `chat_id` is empty."""
        assert self.process is not None
        text = short_prompt()
        answer_id = str(uuid.uuid4())
        user_message = {
            "id": str(uuid.uuid4()),
            "parentId": parent,
            "childrenIds": [],
            "role": "user",
            "content": text,
            "timestamp": int(time.time()),
            "models": [MODEL],
        }
        payload: dict[str, Any] = {
            "stream": True,
            "model": MODEL,
            "messages": [*history, {"role": "user", "content": text}],
            "params": {},
            "features": {},
            "variables": {},
            "session_id": f"bench-{uuid.uuid4().hex[:12]}",
            "id": answer_id,
            "parent_id": parent,
            "user_message": user_message,
        }
        if chat_id:
            payload["chat_id"] = chat_id
        response, head_ms = await timed_request(
            "127.0.0.1",
            self.process.port,
            "POST",
            "/api/chat/completions",
            self._headers(),
            json.dumps(payload).encode(),
        )
        if response.status != 200:
            raise RuntimeError(f"send: HTTP {response.status} {response.body[:300]!r}")
        answer = json.loads(response.body)
        chat_id = answer.get("chat_id") or chat_id
        if not chat_id:
            raise RuntimeError(f"send: no chat id in {response.body[:300]!r}")
        content = await self._wait_done(chat_id, answer_id)
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": content}]
        return head_ms, chat_id, answer_id

    async def _wait_done(self, chat_id: str, answer_id: str, timeout: float = 20) -> str:
        """The answer's text once the chat has it saved as done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chat = await self._json("GET", f"/api/v1/chats/{chat_id}")
            message = (((chat or {}).get("chat") or {}).get("history") or {}).get(
                "messages", {}
            ).get(answer_id) or {}
            if message.get("done"):
                content = str(message.get("content") or "")
                if "tok" not in content:
                    raise RuntimeError(f"answer saved without text: {str(message)[:200]}")
                return content
            await asyncio.sleep(0.02)
        raise TimeoutError(f"answer {answer_id} not done after {timeout} s")

    async def accept(self, earlier: int, sends: int) -> list[float] | None:
        times: list[float] = []
        if earlier == 0:
            for _ in range(sends):
                head_ms, *_ = await self._send("", [], None)
                times.append(head_ms)
            return times
        history: list[dict[str, Any]] = []
        chat_id, parent = "", None
        for _ in range(earlier // 2):
            _, chat_id, parent = await self._send(chat_id, history, parent)
        for _ in range(sends):
            head_ms, chat_id, parent = await self._send(chat_id, history, parent)
            times.append(head_ms)
        return times
