"""A loopback fake of an OpenAI-compatible Chat Completions server (as Gemini exposes one)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web

__all__ = ["FakeLLM"]

# The fake counts a token as 4 characters (OpenAI's rule of thumb for English) when it honours a
# request's `max_tokens`: a longer reply is cut there and ends with finish_reason "length".
CHARS_PER_TOKEN = 4
# A stream without delays gives way to the server's other requests every so many chunks: a
# 45 KB answer would otherwise hold its event loop (and every other request) for 100 ms+.
_CHUNKS_PER_YIELD = 16

StepKind = Literal["reply", "tool_calls", "error", "hang", "garbage", "disconnect"]

# The OpenAI error "type" and "code" a real server sends for common statuses.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}


@dataclass
class _Step:
    """One scripted answer; each incoming chat completion request consumes one."""

    kind: StepKind
    text: str | None = None
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (name, json args, id)
    usage: tuple[int, int] = (10, 5)
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    drop_after: int | None = None  # streamed: drop the connection after this many chunks
    finish_reason: str | None = None  # None: "tool_calls" or "stop"


class _Headers(dict[str, str]):
    """A plain dict of request headers: keys stored lower-case, looked up case-insensitively."""

    def __init__(self, items: Iterator[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


def _echo(request: dict[str, Any]) -> str:
    """Default responder: echo the text of the last user message."""
    texts = FakeLLM.user_texts(request)
    return f"echo: {texts[-1] if texts else ''}"


class FakeLLM:
    """A real HTTP server on 127.0.0.1 speaking the Chat Completions wire protocol.

    Every ``POST /v1/chat/completions`` is recorded (body in ``requests``, headers in
    ``headers``) and answered by the next scripted step, or by ``default`` when none is queued.
    """

    def __init__(self, *, model_ids: tuple[str, ...] = ("gemini-2.5-flash",)) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0  # chat completion requests being answered right now
        self.max_in_flight = 0  # the most there ever were at once
        self.default: Callable[[dict[str, Any]], str] = _echo
        self.model_ids = model_ids
        # Streaming knobs.
        self.chunk_size: int = 8
        self.chunk_delay: float = 0.0
        self.gemini_style_stream_tool_calls: bool = False
        self.base_url: str = ""
        self.port: int = 0
        self._steps: deque[_Step] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._pause_after: int | None = None
        self._pause_release: asyncio.Event | None = None
        self._releases: list[asyncio.Event] = []
        self.stream_paused = asyncio.Event()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind an ephemeral loopback port and start serving."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        # Handlers that are still hanging when close() runs are woken by ``_closing``;
        # the short shutdown timeout is only a backstop.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1/"

    async def close(self) -> None:
        """Stop serving; wakes hanging or paused handlers so this never blocks."""
        self._closing.set()
        for release in self._releases:
            release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- scripting

    def reply(self, text: str, *, usage: tuple[int, int] = (10, 5)) -> None:
        """Queue a plain assistant message (``text`` may be empty)."""
        self._steps.append(_Step("reply", text=text, usage=usage))

    def tool_call(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        *,
        call_id: str = "call_1",
        text: str | None = None,
    ) -> None:
        """Queue an assistant message calling one function (``call_id`` "" is sent as is)."""
        self._steps.append(
            _Step("tool_calls", text=text, calls=[(name, _args_json(arguments), call_id)])
        )

    def tool_calls(self, calls: list[tuple[str, dict[str, Any] | str, str]]) -> None:
        """Queue one assistant message with several function calls: (name, arguments, id)."""
        self._steps.append(_Step("tool_calls", calls=[(n, _args_json(a), i) for n, a, i in calls]))

    def error(
        self,
        status: int,
        *,
        message: str = "The fake model refused the request.",
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        """Queue an OpenAI-style error: ``{"error": {"message", "type", "param", "code"}}``.

        ``headers`` are added to the response (e.g. ``{"Retry-After": "1"}``); ``body``
        replaces the JSON entirely (e.g. Gemini's list-wrapped errors).
        """
        self._steps.append(
            _Step("error", status=status, message=message, headers=dict(headers or {}), body=body)
        )

    def hang(self) -> None:
        """Queue a request that is never answered (until ``close()``)."""
        self._steps.append(_Step("hang"))

    def garbage(
        self,
        body: str = "<html><body>502 Bad Gateway</body></html>",
        *,
        content_type: str = "application/json",
    ) -> None:
        """Queue a 200 whose body is not a chat completion (by default: not even JSON)."""
        self._steps.append(_Step("garbage", body=body, content_type=content_type))

    def disconnect(self) -> None:
        """Queue a request whose connection is dropped without any response."""
        self._steps.append(_Step("disconnect"))

    def delay(self, seconds: float, text: str) -> None:
        """Queue a plain reply sent after ``seconds`` (server-side latency)."""
        self._steps.append(_Step("reply", text=text, delay=seconds))

    def stream_then_drop(self, text: str, *, after_chunks: int) -> None:
        """Queue a reply that, when streamed, breaks off (connection dropped) mid-answer."""
        self._steps.append(_Step("reply", text=text, drop_after=after_chunks))

    def stream_pause(self, after_chunks: int = 1) -> asyncio.Event:
        """Make the next streamed answer stop after ``after_chunks`` SSE content chunks.

        The server sets ``stream_paused`` when it gets there and resumes once the returned
        event is set (or the server closes).
        """
        self._pause_after = after_chunks
        self._pause_release = asyncio.Event()
        self._releases.append(self._pause_release)
        if self._closing.is_set():
            self._pause_release.set()
        self.stream_paused.clear()
        return self._pause_release

    @property
    def pending_steps(self) -> int:
        """How many scripted steps have not been consumed yet."""
        return len(self._steps)

    # ----------------------------------------------------------------- assertions

    async def wait_for_requests(
        self,
        n: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> list[dict[str, Any]]:
        """Wait until at least ``n`` chat requests have arrived; return them all."""
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(self.requests) >= n)
        except TimeoutError:
            raise TimeoutError(
                f"FakeLLM got {len(self.requests)} request(s), expected {n} within {timeout}s"
            ) from None
        return list(self.requests)

    @staticmethod
    def messages(request: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``messages`` array of a recorded request."""
        return list(request.get("messages") or [])

    @staticmethod
    def user_texts(request: dict[str, Any]) -> list[str]:
        """Texts of the role=user messages (string content or a list of text parts)."""
        texts: list[str] = []
        for message in FakeLLM.messages(request):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.append(
                    "".join(
                        part.get("text", "")
                        for part in content
                        if isinstance(part, dict) and part.get("type") == "text"
                    )
                )
        return texts

    # ----------------------------------------------------------------- HTTP handlers

    async def _list_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [self._model_object(m) for m in self.model_ids]}
        )

    async def _get_model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self.model_ids:
            return _error_response(404, f"The model `{model}` does not exist.")
        return web.json_response(self._model_object(model))

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "google"}

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        """Count requests being answered at once (`in_flight`, `max_in_flight`)."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        recorded = body if isinstance(body, dict) else {"_invalid_body": raw.decode("replace")}
        # Take the step before any await so concurrent requests get steps in arrival order;
        # a body that is not a JSON object consumes none.
        step = self._steps.popleft() if self._steps and isinstance(body, dict) else None
        async with self._arrived:
            self.requests.append(recorded)
            self.headers.append(_Headers(iter(request.headers.items())))
            self._arrived.notify_all()
        if not isinstance(body, dict):
            return _error_response(400, "Request body is not a JSON object.")
        if step is None:
            step = _Step("reply", text=self.default(body))
        cap = body.get("max_tokens")
        if isinstance(cap, int) and step.text and len(step.text) > cap * CHARS_PER_TOKEN:
            step = replace(step, text=step.text[: cap * CHARS_PER_TOKEN], finish_reason="length")

        if step.kind == "hang":
            await self._closing.wait()
            return self._drop(request)
        if step.kind == "disconnect":
            return self._drop(request)
        if step.delay and await self._sleep(step.delay):
            return self._drop(request)
        if step.kind == "error":
            if step.body is not None:
                return web.Response(
                    status=step.status,
                    text=step.body,
                    content_type="application/json",
                    headers=step.headers,
                )
            return _error_response(step.status, step.message, step.headers)
        if step.kind == "garbage":
            return web.Response(
                status=200,
                body=(step.body or "").encode(),
                headers={"Content-Type": step.content_type},
            )
        model = str(body.get("model", ""))
        if body.get("stream"):
            return await self._stream(request, body, step, model)
        return web.json_response(self._completion(step, model))

    def _drop(self, request: web.Request) -> web.Response:
        """Close the connection; the returned response is never written."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=499)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep server-side; True if the server closed meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        return self._closing.is_set()

    # ----------------------------------------------------------------- payloads

    def _new_id(self) -> str:
        return f"chatcmpl-fake{next(self._ids):06d}"

    def _completion(self, step: _Step, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.text, "refusal": None}
        if step.kind == "reply" and step.text is None:
            message["content"] = ""
        if step.calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for name, args, cid in step.calls
            ]
        prompt, completion = step.usage
        return {
            "id": self._new_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _finish_reason(step),
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: _Step, model: str
    ) -> web.StreamResponse:
        stream_options = body.get("stream_options") or {}
        include_usage = bool(
            isinstance(stream_options, dict) and stream_options.get("include_usage")
        )
        chunk_id, created = self._new_id(), int(time.time())
        pause_after, release = self._pause_after, self._pause_release
        self._pause_after = self._pause_release = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                ],
            }
            if include_usage:
                data["usage"] = None
            return data

        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        sent = 0

        async def send(data: dict[str, Any] | str) -> None:
            payload = data if isinstance(data, str) else json.dumps(data)
            await response.write(f"data: {payload}\n\n".encode())

        try:
            await response.prepare(request)
            await send(chunk({"role": "assistant", "content": "", "refusal": None}))
            text = step.text or ""
            size = max(1, self.chunk_size)
            for start in range(0, len(text), size):
                if self.chunk_delay and await self._sleep(self.chunk_delay):
                    self._drop(request)
                    return response
                await send(chunk({"content": text[start : start + size]}))
                sent += 1
                if sent % _CHUNKS_PER_YIELD == 0:
                    await asyncio.sleep(0)  # a long answer must not hold this server's loop
                if step.drop_after is not None and sent >= step.drop_after:
                    self._drop(request)
                    return response
                if release is not None and sent == pause_after:
                    self.stream_paused.set()
                    await release.wait()
                    if self._closing.is_set():
                        self._drop(request)
                        return response
            for index, (name, args, cid) in enumerate(step.calls):
                await send(chunk({"tool_calls": self._tool_call_deltas(index, name, args, cid)}))
                if not self.gemini_style_stream_tool_calls:
                    for start in range(0, len(args), size):
                        delta = {
                            "index": index,
                            "function": {"arguments": args[start : start + size]},
                        }
                        await send(chunk({"tool_calls": [delta]}))
            await send(chunk({}, _finish_reason(step)))
            if include_usage:
                prompt, completion = step.usage
                await send(
                    {
                        "id": chunk_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    }
                )
            await send("[DONE]")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream
        return response

    def _tool_call_deltas(self, index: int, name: str, args: str, cid: str) -> list[dict[str, Any]]:
        """The opening delta of one streamed tool call."""
        if self.gemini_style_stream_tool_calls:
            # Gemini sends each call whole, in one delta, without "index".
            return [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]
        return [
            {
                "index": index,
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
        ]


def _finish_reason(step: _Step) -> str:
    return step.finish_reason or ("tool_calls" if step.calls else "stop")


def _args_json(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    error_type, code = _ERROR_KINDS.get(status, ("api_error", None))
    return web.json_response(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        status=status,
        headers=headers,
    )
