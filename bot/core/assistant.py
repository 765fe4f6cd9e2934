"""The core: ask a question in a conversation, or forget one. Knows nothing of Discord."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from agents import (
    Agent,
    RunConfig,
    Runner,
    RunResult,
    RunResultStreaming,
    ToolCallItem,
    TResponseInputItem,
)
from agents.exceptions import AgentsException

from ..errors import UserFacingError
from ..limits.access import Requester
from ..limits.guard import Guard
from ..memory.store import SessionStore
from ..memory.transcript import EXPORT_FORMAT, describe, export_json
from ..memory.turn_session import NotLatestTurn, TurnSession
from ..observe.hooks import MetricsHooks
from ..observe.metrics import Metrics, NoMetrics
from ..render.images import Image
from ..render.uploads import MAX_FILES_PER_QUESTION, NO_IMAGES, Upload, model_input, with_text_files
from ..tools.turn_context import TurnContext
from .choices import Choices
from .failures import EMPTY, FailureExplainer
from .turn_order import Ticket, TurnQueue

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 4000
MAX_AGENT_STEPS = 10
HELP = (
    "Ask me any math question, e.g. `what is 2+2?`, then follow up with `multiply that by 2`. "
    "I remember our conversation; use /forget to wipe it."
)


class TextListener(Protocol):
    """Follows an answer while the model writes it (a front end's live draft)."""

    def text(self, more: str) -> None:
        """The model wrote `more`, which follows the text given since the last `progress`."""

    def progress(self, tool: str | None) -> None:
        """The text so far is set aside: the tool named `tool` runs (the answer is written
        after it), or, with None, the model starts its answer over."""


@dataclass(frozen=True)
class Question:
    """A question that passed admission: its text (with any text files), the images sent with
    it, and who asked (None: the local operator)."""

    text: str
    who: Requester | None = None
    uploads: tuple[Upload, ...] = ()


class Outcome(Enum):
    """How a turn ended, beside failing with `UserFacingError`."""

    ANSWERED = "answered"
    NOT_LATEST = "not latest"  # an edited question is no longer the latest: nothing changed


@dataclass(frozen=True)
class Answer:
    """What the assistant says back."""

    text: str
    attachments: tuple[Image, ...] = field(default=())
    outcome: Outcome = Outcome.ANSWERED


@dataclass(frozen=True)
class ConversationExport:
    """A whole stored conversation as a JSON file (format `EXPORT_FORMAT`)."""

    data: bytes
    items: int
    format: str = EXPORT_FORMAT


class Service(Protocol):
    """Something the assistant starts before its first turn and closes after its last."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Assistant:
    """Answers questions with `Runner.run(agent, text, session=...)`, one turn per session at
    a time and in order, storing each turn whole or not at all.

    Every collaborator is passed in (`bot.app.build` wires them): the memory `store`, the
    `guard` (access, rate, budgets, model cap), the `agent` (made once its model is up, by
    `make_agent`), the `choices` (answer styles and server settings, which give each turn its
    instructions), the `services` it starts in order and closes in reverse, and the
    `metrics` it reports turns, tokens and tool calls to (the adapter reports the rest there).
    """

    def __init__(
        self,
        *,
        store: SessionStore,
        guard: Guard,
        make_agent: Callable[[], Agent[Any]],
        choices: Choices,
        run_config: RunConfig,
        history_turns: int,
        images_allowed: bool,
        services: Sequence[Service] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._guard = guard
        self._make_agent = make_agent
        self.choices = choices
        self._run_config = run_config
        self.history_turns = history_turns
        self._images_allowed = images_allowed
        self._services = tuple(services)
        self._started: list[Service] = []
        self._agent: Agent[Any] | None = None
        self._turns = TurnQueue()
        self._tasks: dict[str, set[asyncio.Task[Answer]]] = {}
        self._failures = FailureExplainer()
        self.metrics: Metrics = metrics or NoMetrics()
        self._hooks = MetricsHooks(self.metrics) if metrics is not None else None

    async def start(self) -> None:
        """Start the services (memory store, ledgers, tool pools, model client) in order;
        nothing more if it is started already."""
        if self._agent is not None:
            return
        for service in self._services:
            await service.start()
            self._started.append(service)
        self._agent = self._make_agent()

    async def close(self) -> None:
        """Close what `start()` started, last first; one failure does not stop the rest."""
        self._agent = None
        while self._started:
            service = self._started.pop()
            try:
                await service.close()
            except Exception:
                log.exception("could not close %s", type(service).__name__)

    @property
    def images_allowed(self) -> bool:
        """Whether images attached to a question go to the model (else they are refused)."""
        return self._images_allowed

    def admit_asker(self, who: Requester | None) -> None:
        """Whether `who` may ask now (access lists, rate limit; counts against the rate), for a
        front end to call before it downloads a question's files; `UserFacingError` if not."""
        self._guard.admit(who)

    def admit(
        self,
        text: str,
        who: Requester | None = None,
        uploads: tuple[Upload, ...] = (),
        *,
        asker_admitted: bool = False,
    ) -> Question:
        """Check a question before anything is done with it: its size, its files, and whether
        `who` may ask now (access lists, rate limit), unless `admit_asker` already said so
        (`asker_admitted`). Raises `UserFacingError`; calls no model."""
        typed = check_question(text) if not uploads or text.strip() else ""
        if len(uploads) > MAX_FILES_PER_QUESTION:
            raise UserFacingError(
                f"Please attach at most {MAX_FILES_PER_QUESTION} files to one question."
            )
        if any(u.kind == "image" for u in uploads) and not self._images_allowed:
            raise UserFacingError(NO_IMAGES)
        question = Question(with_text_files(typed, uploads), who, uploads)
        if not asker_admitted:
            self._guard.admit(who)
        return question

    def reserve(self, session_id: str) -> Ticket:
        """Take a turn's place in the session's order now, before its question is ready (its
        files still downloading): pass it to `submit`, or `release()` it if the question is
        refused, else every later turn of the session waits for it."""
        return self._turns.enter(session_id)

    def submit(
        self,
        session_id: str,
        question: Question,
        *,
        on_text: TextListener | None = None,
        replaces: str | None = None,
        ticket: Ticket | None = None,
    ) -> asyncio.Task[Answer]:
        """Queue a turn now (its place in the session's order is taken at this call, or was
        by `reserve`: `ticket`) and start it. Await the task for the `Answer`; it raises
        `UserFacingError` on failure, and is cancelled by `cancel()` or `forget()`. With
        `on_text`, the model's answer is streamed: `on_text` hears each piece of text as it is
        written, and each tool called. With `replaces`, the turn takes the place of the
        session's last turn, which must be the one that asked `replaces` (an edited question);
        otherwise nothing happens."""
        if ticket is None:
            ticket = self._turns.enter(session_id)
        elif ticket.key != session_id:
            raise ValueError(f"a place reserved in {ticket.key} submitted to {session_id}")
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

    async def forget(self, session_id: str, user_id: int | None = None) -> None:
        """Stop the session's turns, then delete the conversation, and the answer style of
        `user_id` (the user who asked to forget) when given."""
        self.cancel(session_id)
        try:
            async with (
                self._turns.enter(session_id),
                self._store.turn_lock(session_id) as lease,
                self._store.session(session_id) as stored,
            ):
                await stored.clear_session()
                await self._store.forget(lease)
            if user_id is not None:
                await self.choices.forget_user(user_id)
        except Exception as exc:
            raise self._failures.explain(exc) from exc
        log.info("forgot %s", session_id)

    async def history(self, session_id: str, shown: int) -> str:
        """What `/history` shows: the last `shown` exchanges, and how many the model gets."""
        return describe(await self.transcript(session_id), shown, self.history_turns)

    async def export(self, session_id: str, user_id: int | None = None) -> ConversationExport:
        """The whole stored conversation as a JSON document, with the choices of `user_id`
        (the user who asked for it) when given."""
        items = await self.transcript(session_id)
        try:
            chosen = await self.choices.exported(user_id) if user_id is not None else None
        except Exception as exc:
            raise self._failures.explain(exc) from exc
        data = export_json(session_id, items, self.history_turns, preferences=chosen)
        return ConversationExport(data, len(items))

    async def usage(self, who: Requester) -> str:
        """What `/usage` shows: the caller's tokens today and in total (admins: the top)."""
        return await self._guard.usage_text(who)

    @property
    def services(self) -> tuple[Service, ...]:
        """What `start()` starts, in order."""
        return self._services

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
        started = time.monotonic()
        self.metrics.turn_started()
        ended = "failed"
        try:
            async with ticket:
                answer = await self._run_turn(session_id, question, on_text, replaces)
            ended = "answered" if answer.outcome is Outcome.ANSWERED else "unchanged"
            return answer
        except asyncio.CancelledError:
            ended = "cancelled"
            raise
        except UserFacingError as exc:
            ended = "failed" if exc.__cause__ is not None or exc.message == EMPTY else "refused"
            raise
        finally:
            ticket.release()
            self.metrics.turn_ended()
            self.metrics.answered(ended, time.monotonic() - started)

    async def _run_turn(
        self,
        session_id: str,
        question: Question,
        on_text: TextListener | None = None,
        replaces: str | None = None,
    ) -> Answer:
        if self._agent is None:
            raise RuntimeError("Assistant.start() was not called")
        try:
            # Budgets and a shared rate limit may live on the memory server: its outages
            # are explained like the memory's.
            await self._guard.check_budget(question.who)
            style = await self.choices.for_turn(question.who)
            async with (
                self._store.turn_lock(session_id) as lease,
                self._store.session(session_id) as stored,
            ):
                turn = TurnSession(
                    stored, self.history_turns, store=self._store, lease=lease, replaces=replaces
                )
                context = TurnContext(user=None if question.who is None else question.who.user_id)
                result = await self._run_agent(turn, question, context, on_text, style.instructions)
                await self._guard.record(question.who, result.context_wrapper.usage)
                answer = final_text(result)
                await turn.commit()
        except NotLatestTurn:
            return Answer("", outcome=Outcome.NOT_LATEST)
        except UserFacingError:
            raise
        except Exception as exc:
            raise self._failures.explain(exc) from exc
        text = f"{answer}\n{style.note}" if style.note else answer
        return Answer(text=text, attachments=tuple(context.images))

    async def _run_agent(
        self,
        turn: TurnSession,
        question: Question,
        context: TurnContext,
        on_text: TextListener | None,
        instructions: str,
    ) -> RunResult | RunResultStreaming:
        """One run of the agent, with the turn's `instructions` (its answer style), within a
        model-call slot; a failed run is still charged."""
        assert self._agent is not None
        options: dict[str, Any] = {
            "session": turn,
            "context": context,
            "run_config": self._run_config,
            "max_turns": MAX_AGENT_STEPS,
        }
        if self._hooks is not None:
            options["hooks"] = self._hooks
        text = model_input(question.text, question.uploads)
        # A clone per run: the SDK's checks on an agent shared by concurrent runs grow with the
        # square of their number (it suggests exactly this).
        agent = self._agent.clone(tools=list(self._agent.tools), instructions=instructions)
        try:
            async with self._guard.model_slot():
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
            await self._guard.record(question.who, run_data.context_wrapper.usage)


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


async def relay_text(streamed: RunResultStreaming, listener: TextListener) -> None:
    """Tell `listener` what the model writes as it writes it (each piece once, so the work per
    event is that piece's), and each tool it calls before the tool runs. Raises what the run
    raised."""
    written = False  # text was given since the last `progress`
    async for event in streamed.stream_events():
        if event.type == "run_item_stream_event":
            if event.name == "tool_called" and isinstance(event.item, ToolCallItem):
                listener.progress(event.item.tool_name or "")
                written = False
        elif event.type == "raw_response_event":
            if event.data.type == "response.created" and written:
                listener.progress(None)  # a new response without a tool call: starts over
                written = False
            elif event.data.type == "response.output_text.delta" and event.data.delta:
                listener.text(event.data.delta)
                written = True


def final_text(result: RunResult | RunResultStreaming) -> str:
    """The run's answer; an empty one is an error, since Discord rejects empty messages."""
    text = str(result.final_output or "").strip()
    if not text:
        log.warning("model returned an empty answer; the turn is not stored")
        raise UserFacingError(EMPTY)
    return text
