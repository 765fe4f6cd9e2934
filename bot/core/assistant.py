"""The core: ask a question in a conversation, or forget one. Knows nothing of Discord."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents import (
    Agent,
    Runner,
    RunResult,
    RunResultStreaming,
    Tool,
    TResponseInputItem,
    set_tracing_export_api_key,
)
from agents.exceptions import AgentsException
from agents.models.interface import Model
from openai import AsyncOpenAI

from ..config.settings import Settings
from ..errors import UserFacingError
from ..limits.access import Requester
from ..limits.guard import Guard
from ..limits.usage import utc_now
from ..memory.session import SessionStore, TurnSession
from ..memory.stores import open_store
from ..render.uploads import MAX_FILES, NO_IMAGES, Upload, model_input, with_text_files
from ..tools.calculator.calculator import Calculator
from ..tools.calculator.tool import calculate_tool
from ..tools.plotting.plotter import Plotter
from ..tools.plotting.tool import plot_tool
from ..tools.turn_context import TurnContext
from .agent import build_agent, build_model, run_config
from .failures import EMPTY, FailureExplainer
from .llm_client import build_client
from .turn_order import Ticket, TurnQueue

log = logging.getLogger(__name__)

TextListener = Callable[[str], None]
MAX_QUESTION_CHARS = 4000
MAX_AGENT_STEPS = 10
HELP = (
    "Ask me any math question, e.g. `what is 2+2?`, then follow up with `multiply that by 2`. "
    "I remember our conversation; use /forget to wipe it."
)


@dataclass(frozen=True)
class Question:
    """A question that passed admission: its text (with any text files), the images sent with
    it, and who asked (None: the local operator)."""

    text: str
    who: Requester | None = None
    uploads: tuple[Upload, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What the assistant says back."""

    text: str
    usage_tokens: int = 0
    attachments: tuple[tuple[str, bytes], ...] = field(default=())


class Assistant:
    """Answers questions with `Runner.run(agent, text, session=...)`, one turn per session at
    a time and in order, storing each turn whole or not at all."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: Model | None = None,
        store: SessionStore | None = None,
        calculator: Calculator | None = None,
        plotter: Plotter | None = None,
        tools: tuple[Tool, ...] = (),
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        """`calculator` and `plotter`, when given, are owned by the caller (they start on first
        use); otherwise the assistant starts its own in `start()` and stops them in `close()`."""
        self.settings = settings
        self._model = model
        self._store: SessionStore = store or open_store(settings.session_db)
        self._owns_calculator = calculator is None
        self._calculator = calculator or Calculator()
        self._owns_plotter = plotter is None
        self._plotter = plotter or Plotter()
        self._tools = tools
        self._client: AsyncOpenAI | None = None
        self._agent: Agent | None = None
        self._turns = TurnQueue()
        self._tasks: dict[str, set[asyncio.Task[Answer]]] = {}
        self.guard = Guard(settings.controls, settings.usage_path, now=now)
        self._failures = FailureExplainer()
        self._run_config = run_config(settings)

    async def start(self) -> None:
        """Open the memory store and the model client."""
        await self._store.start()
        await self.guard.start()
        if self._model is None:
            self._client = build_client(self.settings)
            self._model = build_model(self.settings, self._client)
        if self.settings.tracing_api_key:
            set_tracing_export_api_key(self.settings.tracing_api_key)
        if self._owns_calculator:
            await self._calculator.start()
        if self._owns_plotter:
            await self._plotter.start()
        tools = (calculate_tool(self._calculator), plot_tool(self._plotter), *self._tools)
        self._agent = build_agent(self._model, tools)
        log.info(
            "assistant ready: model %s at %s, memory per %s, %d turns of history",
            self.settings.llm_model,
            self.settings.llm_base_url,
            self.settings.session_scope,
            self.settings.history_turns,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._owns_calculator:
            await self._calculator.close()
        if self._owns_plotter:
            await self._plotter.close()
        await self.guard.close()
        await self._store.close()

    def admit(
        self, text: str, who: Requester | None = None, uploads: tuple[Upload, ...] = ()
    ) -> Question:
        """Check a question before anything is done with it: its size, its files, and whether
        `who` may ask now (access lists, rate limit). Raises `UserFacingError`; calls no model."""
        typed = check_question(text) if not uploads or text.strip() else ""
        if len(uploads) > MAX_FILES:
            raise UserFacingError(f"Please attach at most {MAX_FILES} files to one question.")
        if any(u.kind == "image" for u in uploads) and not self.settings.llm_images:
            raise UserFacingError(NO_IMAGES)
        question = Question(with_text_files(typed, uploads), who, uploads)
        self.guard.admit(who)
        return question

    def submit(
        self,
        session_id: str,
        question: Question,
        *,
        on_text: TextListener | None = None,
        replaces: str | None = None,
    ) -> asyncio.Task[Answer]:
        """Queue a turn now (its place in the session's order is taken at this call) and
        start it. Await the task for the `Answer`; it raises `UserFacingError` on failure,
        and is cancelled by `cancel()` or `forget()`. With `on_text`, the model's answer is
        streamed: `on_text` gets the text written so far, each time it grows. With
        `replaces`, the turn takes the place of the session's last turn, which must be the
        one that asked `replaces` (an edited question); otherwise nothing happens."""
        ticket = self._turns.enter(session_id)
        task = asyncio.create_task(
            self._answer(ticket, session_id, question, on_text, replaces),
            name=f"mathbot-turn:{session_id}",
        )
        tasks = self._tasks.setdefault(session_id, set())
        tasks.add(task)
        task.add_done_callback(lambda t: self._untrack(session_id, t))
        return task

    async def ask(self, session_id: str, text: str, who: Requester | None = None) -> Answer:
        return await self.submit(session_id, self.admit(text, who))

    def cancel(self, session_id: str) -> int:
        """Stop the session's turns in flight or queued; nothing of them is stored."""
        tasks = [t for t in self._tasks.get(session_id, ()) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            log.info("cancelled %d turn(s) of %s", len(tasks), session_id)
        return len(tasks)

    async def transcript(self, session_id: str) -> list[TResponseInputItem]:
        """Everything stored for the session, oldest first (after any turn queued for it)."""
        try:
            async with self._turns.enter(session_id), self._store.session(session_id) as stored:
                return await stored.get_items()
        except Exception as exc:
            raise self._failures.explain(exc) from exc

    async def forget(self, session_id: str) -> None:
        """Stop the session's turns, then delete the conversation."""
        self.cancel(session_id)
        try:
            async with (
                self._turns.enter(session_id),
                self._store.turn_lock(session_id),
                self._store.session(session_id) as stored,
            ):
                await stored.clear_session()
        except Exception as exc:
            raise self._failures.explain(exc) from exc
        log.info("forgot %s", session_id)

    @property
    def busy_sessions(self) -> int:
        """How many sessions have a turn queued or running (bounded by traffic, not users)."""
        return len(self._turns)

    def _untrack(self, session_id: str, task: asyncio.Task[Answer]) -> None:
        tasks = self._tasks.get(session_id)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._tasks[session_id]

    async def _answer(
        self,
        ticket: Ticket,
        session_id: str,
        question: Question,
        on_text: TextListener | None,
        replaces: str | None,
    ) -> Answer:
        try:
            async with ticket:
                return await self._run_turn(session_id, question, on_text, replaces)
        finally:
            ticket.release()

    async def _run_turn(
        self,
        session_id: str,
        question: Question,
        on_text: TextListener | None = None,
        replaces: str | None = None,
    ) -> Answer:
        if self._agent is None:
            raise RuntimeError("Assistant.start() was not called")
        await self.guard.check_budget(question.who)
        try:
            async with (
                self._store.turn_lock(session_id),
                self._store.session(session_id) as stored,
            ):
                turn = TurnSession(stored, self.settings.history_turns, replaces=replaces)
                context = TurnContext()
                result = await self._run_agent(turn, question, context, on_text)
                usage = result.context_wrapper.usage
                await self.guard.record(question.who, usage)
                answer = final_text(result)
                await turn.commit()
        except UserFacingError:
            raise
        except Exception as exc:
            raise self._failures.explain(exc) from exc
        return Answer(
            text=answer, usage_tokens=usage.total_tokens, attachments=tuple(context.images)
        )

    async def _run_agent(
        self,
        turn: TurnSession,
        question: Question,
        context: TurnContext,
        on_text: TextListener | None,
    ) -> RunResult | RunResultStreaming:
        """One run of the agent within a model-call slot; a failed run is still charged."""
        assert self._agent is not None
        options: dict[str, Any] = {
            "session": turn,
            "context": context,
            "run_config": self._run_config,
            "max_turns": MAX_AGENT_STEPS,
        }
        text = model_input(question.text, question.uploads)
        # A clone per run: the SDK's checks on an agent shared by concurrent runs grow with the
        # square of their number (it suggests exactly this).
        agent = self._agent.clone(tools=list(self._agent.tools))
        try:
            async with self.guard.model_slot():
                if on_text is None:
                    return await Runner.run(agent, text, **options)
                streamed = Runner.run_streamed(agent, text, **options)
                await relay_text(streamed, on_text)
                return streamed
        except UserFacingError:
            raise
        except Exception as exc:
            await self._charge_failed_run(question, exc)
            raise

    async def _charge_failed_run(self, question: Question, exc: Exception) -> None:
        """A failed run may still have spent tokens (e.g. before a tool loop ran out)."""
        run_data = exc.run_data if isinstance(exc, AgentsException) else None
        if run_data is not None:
            await self.guard.record(question.who, run_data.context_wrapper.usage)


def check_question(question: str) -> str:
    """The question as it goes to the model, or a `UserFacingError` saying what to fix."""
    text = question.strip()
    if not text:
        raise UserFacingError(HELP)
    if len(text) > MAX_QUESTION_CHARS:
        raise UserFacingError(
            f"That message is too long ({len(text):,} characters). "
            f"Please keep questions under {MAX_QUESTION_CHARS:,} characters."
        )
    return text


async def relay_text(streamed: RunResultStreaming, on_text: TextListener) -> None:
    """Pass the text of the model response being written to `on_text` as it grows; a new
    response (after a tool call) starts over. Raises what the run raised."""
    text = ""
    async for event in streamed.stream_events():
        if event.type != "raw_response_event":
            continue
        if event.data.type == "response.created":
            text = ""
        elif event.data.type == "response.output_text.delta":
            text += event.data.delta
            on_text(text)


def final_text(result: RunResult | RunResultStreaming) -> str:
    """The run's answer; an empty one is an error, since Discord rejects empty messages."""
    text = str(result.final_output or "").strip()
    if not text:
        log.warning("model returned an empty answer; the turn is not stored")
        raise UserFacingError(EMPTY)
    return text
