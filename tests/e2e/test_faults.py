"""Faults of the model endpoint, the memory server and Discord: polite replies, then recovery."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.core.failures import (
    MALFORMED,
    NO_MEMORY,
    RATE_LIMITED,
    TIMED_OUT,
    UNAVAILABLE,
    UNREACHABLE,
)
from bot.memory.keys import user_session_id
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, World
from tests.memory.backends import need_packages

SESSION = user_session_id(ALICE)


async def dm(world: World, text: str) -> None:
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content=text)


async def answers(world: World, count: int, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
    found = await world.discord.wait_for_messages(ALICE_DM, count, timeout=timeout)
    return [m["content"] for m in found]


def roles(world: World) -> list[str | None]:
    return [item.get("role") for item in world.rows(SESSION)]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- the model endpoint


MODEL_FAULTS: dict[str, tuple[Callable[[FakeLLM], None], str]] = {
    "hangs": (lambda llm: llm.hang(), TIMED_OUT),
    "429-retry-after": (lambda llm: llm.error(429, headers={"Retry-After": "30"}), RATE_LIMITED),
    "500": (lambda llm: llm.error(500), UNAVAILABLE),
    "not-json": (lambda llm: llm.garbage(), MALFORMED),
    "truncated-json": (lambda llm: llm.garbage('{"id": "chatcmpl-1", "choices": [{'), MALFORMED),
    "not-a-completion": (lambda llm: llm.garbage('{"unexpected": true}'), MALFORMED),
    "json-array": (lambda llm: llm.garbage("[]"), MALFORMED),
    "json-null": (lambda llm: llm.garbage("null"), MALFORMED),
    "drops-connection": (lambda llm: llm.disconnect(), UNREACHABLE),
}


@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
async def test_model_fault_is_polite_stores_nothing_and_service_resumes(
    world: World, fault: str
) -> None:
    script, polite = MODEL_FAULTS[fault]
    await world.restart_bot(llm_timeout=0.5, llm_max_retries=0)
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await answers(world, 1)
    script(world.llm)
    await dm(world, "this one fails")
    assert (await answers(world, 2))[1] == polite
    assert roles(world) == ["user", "assistant"]  # the failed turn left nothing behind
    world.llm.reply("8")
    await dm(world, "multiply that by 2")
    assert (await answers(world, 3))[2] == "8"
    assert FakeLLM.user_texts(world.llm.requests[-1]) == ["what is 2+2?", "multiply that by 2"]
    assert roles(world) == ["user", "assistant"] * 2


async def test_429_with_retry_after_is_waited_out_and_answered(world: World) -> None:
    await world.restart_bot(llm_max_retries=2)
    world.llm.error(429, headers={"Retry-After": "1"})
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.llm.wait_for_requests(1)
    refused_at = time.monotonic()
    await world.llm.wait_for_requests(2, timeout=5)
    assert time.monotonic() - refused_at >= 0.8  # it waited as told before asking again
    assert await answers(world, 1) == ["4"]
    assert roles(world) == ["user", "assistant"]


class Gate:
    """A loopback port that refuses connections while shut and forwards them, when open, to
    the fake model (the endpoint going down and coming back, on the same address)."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def shut(self) -> None:
        """Stop listening and cut every forwarded connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def test_refused_connections_are_polite_and_service_resumes_when_it_listens(
    world: World,
) -> None:
    gate = Gate(free_port(), world.llm.port)
    await world.restart_bot(llm_base_url=gate.base_url)
    try:
        await dm(world, "what is 1+1?")  # nothing listens on the port yet
        assert await answers(world, 1) == [UNREACHABLE]
        assert world.rows(SESSION) == [] and world.llm.requests == []

        await gate.open()
        world.llm.reply("4")
        await dm(world, "what is 2+2?")
        assert (await answers(world, 2))[1] == "4"

        await gate.shut()  # down again, with the bot's kept-alive connection cut
        await dm(world, "this one fails")
        assert (await answers(world, 3))[2] == UNREACHABLE
        assert roles(world) == ["user", "assistant"]

        await gate.open()
        world.llm.reply("8")
        await dm(world, "multiply that by 2")
        assert (await answers(world, 4))[3] == "8"
        assert FakeLLM.user_texts(world.llm.requests[-1]) == ["what is 2+2?", "multiply that by 2"]
        assert roles(world) == ["user", "assistant"] * 2
    finally:
        await gate.shut()


# --------------------------------------------------------------------------- the memory server


class PrivateRedis:
    """A redis-server of this test's own on a free port, keeping nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.workdir), "--loglevel", "notice",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert self._process.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(10):
            while "Ready to accept connections" not in (seen[-1] if seen else ""):
                line = await self._process.stdout.readline()
                if not line:
                    raise RuntimeError("redis-server exited:\n" + "".join(seen))
                seen.append(line.decode(errors="replace"))
        # From here on the output is discarded so the pipe never fills.
        self._drain = asyncio.create_task(self._process.stdout.read())

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)
        if self._drain is not None:
            await self._drain


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (initdb in a temporary directory, a free port,
    trust auth), run as the `postgres` user when the test runs as root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mathbot-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{output.decode(errors='replace')}")

    async def init(self) -> None:
        await self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-w", "-t", "30", "-o", options, "start",
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        await self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    async def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parts[-3]
    return tuple(int(p) for p in part.split(".") if p.isdigit())


@contextlib.asynccontextmanager
async def private_server(kind: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A private Redis or PostgreSQL server that the test may stop and start at will (the
    machine's shared servers are left alone). Skips, with the reason, without the binaries."""
    if kind == "redis":
        need_packages("redis", "redis")
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        redis = PrivateRedis(tmp_path)
        await redis.start()
        try:
            yield redis
        finally:
            await redis.stop()
        return
    need_packages("postgres", "asyncpg", "sqlalchemy")
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without `runuser` to start PostgreSQL as `postgres`")
    postgres = PrivatePostgres(bindir)
    try:
        await postgres.init()
        await postgres.start()
        yield postgres
    finally:
        await postgres.remove()


@pytest.mark.parametrize("kind", ["redis", "postgres"])
async def test_memory_server_restart_is_polite_and_recovers_by_itself(
    world: World, kind: str, tmp_path: Path
) -> None:
    async with private_server(kind, tmp_path) as server:
        await world.restart_bot(session_db=server.url, usage_db=str(tmp_path / "usage.db"))
        world.llm.reply("4")
        await dm(world, "what is 2+2?")
        assert await answers(world, 1) == ["4"]

        await server.stop()
        await dm(world, "multiply that by 2")
        assert (await answers(world, 2, timeout=15))[1] == NO_MEMORY
        assert len(world.llm.requests) == 1  # refused before any model call

        await server.start()  # same port; the bot is not restarted
        world.llm.reply("12")
        await dm(world, "multiply that by 3")
        assert (await answers(world, 3, timeout=15))[2] == "12"
        texts = FakeLLM.user_texts(world.llm.requests[-1])
        if kind == "postgres":  # kept on disk across the restart
            assert texts == ["what is 2+2?", "multiply that by 3"]
        else:  # this Redis keeps nothing across a restart
            assert texts[-1] == "multiply that by 3"


# --------------------------------------------------------------------------- Discord


@pytest.mark.parametrize(
    "status",
    [
        429,
        500,
        502,
        503,  # discord.py does not retry a 503: the bot's own retry (with a nonce) does
    ],
)
async def test_rest_error_on_posting_the_reply_loses_no_reply(world: World, status: int) -> None:
    messages = rf"/channels/{ALICE_DM}/messages"
    world.discord.fail_next("POST", messages, status=status, retry_after=0.05)
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    assert await answers(world, 1, timeout=10) == ["4"]  # discord.py retries after 1 s
    posts = [r for r in world.discord.requests if r.method == "POST" and r.path == messages]
    assert [(r.status, r.injected) for r in posts] == [(status, True), (200, False)]


async def test_dropped_gateway_resumes_and_loses_no_reply(world: World) -> None:
    world.llm.delay(0.5, "4")  # in flight while the connection drops
    world.llm.reply("8")
    await dm(world, "what is 2+2?")
    await world.llm.wait_for_requests(1)
    await world.discord.drop_gateway()
    await dm(world, "multiply that by 2")  # sent while the bot is away: replayed on RESUME
    await world.discord.wait_until(lambda: world.discord.resume_count == 1, what="a RESUME")
    assert await answers(world, 2) == ["4", "8"]
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]
    world.llm.reply("24")
    await dm(world, "and by 3?")
    assert (await answers(world, 3))[2] == "24"
    assert world.discord.identify_count == 1  # resumed, never identified again
    assert roles(world) == ["user", "assistant"] * 3


async def test_invalidated_session_reidentifies_and_loses_no_reply(world: World) -> None:
    world.llm.delay(0.5, "4")  # in flight while the session is invalidated
    await dm(world, "what is 2+2?")
    await world.llm.wait_for_requests(1)
    identified = world.discord.identify_count
    await world.discord.invalidate_session()
    await world.discord.wait_for_ready()  # a new session: IDENTIFY, READY
    assert world.discord.identify_count == identified + 1
    assert await answers(world, 1) == ["4"]
    world.llm.reply("8")
    await dm(world, "multiply that by 2")
    assert (await answers(world, 2))[1] == "8"
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]


async def test_slow_discord_while_streaming_leaves_one_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discord is slow to answer a POST (the message exists by then) as the turn ends."""
    request = discord.http.HTTPClient.request

    async def slow(self: discord.http.HTTPClient, route: discord.http.Route, **kw: Any) -> Any:
        result = await request(self, route, **kw)
        if route.method == "POST" and route.path.endswith("/messages"):
            await asyncio.sleep(0.5)  # the response is late; the message is already there
        return result

    monkeypatch.setattr(discord.http.HTTPClient, "request", slow)
    await world.restart_bot(streaming=True, stream_edit_interval=0.5)
    messages = f"/channels/{ALICE_DM}/messages"

    def posts() -> list[Any]:
        return [r for r in world.discord.requests if r.method == "POST" and r.path == messages]

    def edits() -> list[Any]:
        return [r for r in world.discord.requests if r.method == "PATCH" and messages in r.path]

    release = world.llm.stream_pause(after_chunks=1)
    world.llm.reply("the answer is 4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_until(lambda: bool(posts()), what="the draft")
    release.set()  # the turn ends while the draft's POST is still unanswered
    await world.discord.wait_until(lambda: len(world.rows(SESSION)) == 2, what="the stored turn")
    with contextlib.suppress(TimeoutError):  # the draft is edited, or a second one is posted
        await world.discord.wait_until(lambda: len(posts()) > 1 or bool(edits()), timeout=3)
    assert [m["content"] for m in world.discord.messages(ALICE_DM)] == ["the answer is 4"]
