# Ported from crewAIInc/crewAI lib/crewai/tests/test_async_human_feedback.py
# (commit f4731f5025f861c78e3af0487cc80bf5e7c64782, main after the 1.15.17 release: upstream's history has
# no 1.15.30 tag or version bump to cite, and this is its newest commit; the installed package is 1.15.30):
# the persistence and resume parts.
"""CrewAI's async human-feedback persistence and resume tests, run against DjangoFlowPersistence.

Kept: pending-feedback save/load/clear/replace, ``Flow.from_pending``,
``resume``/``resume_async`` (terminal resumes, routing, the flow lifecycle
events of a suppressed resume, outputs recorded before downstream listeners),
pausing through a provider that raises ``HumanFeedbackPending``, automatic
persistence on pause, and the round trip of a ``PendingFeedbackContext`` (with
its LLM config) through the persistence.
Upstream's pure unit tests of the dataclasses, exception, provider protocol,
``_collapse_to_outcome`` parsing and ``_serialize_llm_for_context`` are not
ported: they never touch persistence.

Changes from upstream:

- ``SQLiteFlowPersistence(db_path)`` is ``DjangoFlowPersistence()``; the
  SQLite-file specifics (temporary directories, ``db_path``) are dropped.
- Test classes are flattened into plain functions.
- The database marker is transactional because CrewAI runs flow methods and
  persistence calls on worker threads with their own DB connections.
- The async test runs its upstream body with ``asyncio.run`` (pytest-asyncio is
  not installed here).
- Tests that relied on CrewAI's built-in default persistence point the default
  factory at DjangoFlowPersistence (as the engine registry does) and also
  check it is the backend used.
"""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock, patch

import pytest
from crewai.flow import Flow, HumanFeedbackResult, human_feedback, listen, start
from crewai.flow.async_feedback import HumanFeedbackPending, PendingFeedbackContext
from pydantic import BaseModel

from reviewconsole.engine.persistence import DjangoFlowPersistence

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_BUS_EMIT = "crewai.flow.runtime.crewai_event_bus.emit"


def _state_dump(flow: Flow) -> dict:
    return flow.state if isinstance(flow.state, dict) else flow.state.model_dump()


# =============================================================================
# Persistence with pending feedback (upstream TestSQLitePendingFeedback)
# =============================================================================


def test_save_and_load_pending_feedback() -> None:
    """Test saving and loading pending feedback context."""
    persistence = DjangoFlowPersistence()

    context = PendingFeedbackContext(
        flow_id="persist-test-123",
        flow_class="test.TestFlow",
        method_name="review",
        method_output={"data": "test"},
        message="Review this:",
        emit=["approved", "rejected"],
        llm="gpt-4o-mini",
    )

    state_data = {"counter": 10, "items": ["a", "b"]}

    # Save pending feedback
    persistence.save_pending_feedback(
        flow_uuid="persist-test-123",
        context=context,
        state_data=state_data,
    )

    # Load pending feedback
    result = persistence.load_pending_feedback("persist-test-123")

    assert result is not None
    loaded_state, loaded_context = result
    assert loaded_state["counter"] == 10
    assert loaded_state["items"] == ["a", "b"]
    assert loaded_context.flow_id == "persist-test-123"
    assert loaded_context.emit == ["approved", "rejected"]


def test_load_nonexistent_pending_feedback() -> None:
    """Test loading pending feedback that doesn't exist."""
    persistence = DjangoFlowPersistence()

    result = persistence.load_pending_feedback("nonexistent-id")
    assert result is None


def test_clear_pending_feedback() -> None:
    """Test clearing pending feedback after resume."""
    persistence = DjangoFlowPersistence()

    context = PendingFeedbackContext(
        flow_id="clear-test",
        flow_class="test.Flow",
        method_name="method",
        method_output="output",
        message="message",
    )

    persistence.save_pending_feedback(
        flow_uuid="clear-test",
        context=context,
        state_data={"key": "value"},
    )

    # Verify it exists
    assert persistence.load_pending_feedback("clear-test") is not None

    # Clear it
    persistence.clear_pending_feedback("clear-test")

    # Verify it's gone
    assert persistence.load_pending_feedback("clear-test") is None


def test_replace_existing_pending_feedback() -> None:
    """Test that saving pending feedback replaces existing entry."""
    persistence = DjangoFlowPersistence()

    flow_id = "replace-test"

    # Save first version
    context1 = PendingFeedbackContext(
        flow_id=flow_id,
        flow_class="test.Flow",
        method_name="method1",
        method_output="output1",
        message="message1",
    )
    persistence.save_pending_feedback(
        flow_uuid=flow_id,
        context=context1,
        state_data={"version": 1},
    )

    # Save second version (should replace)
    context2 = PendingFeedbackContext(
        flow_id=flow_id,
        flow_class="test.Flow",
        method_name="method2",
        method_output="output2",
        message="message2",
    )
    persistence.save_pending_feedback(
        flow_uuid=flow_id,
        context=context2,
        state_data={"version": 2},
    )

    # Load and verify it's the second version
    result = persistence.load_pending_feedback(flow_id)
    assert result is not None
    state, context = result
    assert state["version"] == 2
    assert context.method_name == "method2"


# =============================================================================
# Flow.from_pending and resume (upstream TestFlowResumeWithFeedback)
# =============================================================================


def test_from_pending_uses_default_persistence(django_default_persistence) -> None:
    """Test that from_pending uses the default persistence (here: DjangoFlowPersistence)."""

    class TestFlow(Flow):
        @start()
        def begin(self):
            return "started"

    # When no persistence is provided, it uses the default persistence.
    # This will raise "No pending feedback found" (not a persistence error)
    with pytest.raises(ValueError, match="No pending feedback found"):
        TestFlow.from_pending("nonexistent-id")

    # Added in the port: the default really is the Django backend, not SQLite.
    DjangoFlowPersistence().save_pending_feedback(
        flow_uuid="default-backend-test",
        context=PendingFeedbackContext(
            flow_id="default-backend-test",
            flow_class="test.TestFlow",
            method_name="begin",
            method_output="started",
            message="Review:",
        ),
        state_data={"id": "default-backend-test"},
    )
    flow = TestFlow.from_pending("default-backend-test")
    assert isinstance(flow.persistence, DjangoFlowPersistence)
    assert flow.pending_feedback is not None
    assert flow.pending_feedback.method_name == "begin"


def test_from_pending_raises_for_missing_flow() -> None:
    """Test that from_pending raises error for nonexistent flow."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        def begin(self):
            return "started"

    with pytest.raises(ValueError, match="No pending feedback found"):
        TestFlow.from_pending("nonexistent-id", persistence)


def test_from_pending_restores_state() -> None:
    """Test that from_pending correctly restores flow state."""
    persistence = DjangoFlowPersistence()

    class TestState(BaseModel):
        id: str = "test-restore-123"
        counter: int = 0

    class TestFlow(Flow[TestState]):
        @start()
        def begin(self):
            return "started"

    # Manually save pending feedback
    context = PendingFeedbackContext(
        flow_id="test-restore-123",
        flow_class="test.TestFlow",
        method_name="review",
        method_output="content",
        message="Review:",
    )
    persistence.save_pending_feedback(
        flow_uuid="test-restore-123",
        context=context,
        state_data={"id": "test-restore-123", "counter": 42},
    )

    # Restore flow
    flow = TestFlow.from_pending("test-restore-123", persistence)

    assert flow._pending_feedback_context is not None
    assert flow._pending_feedback_context.flow_id == "test-restore-123"
    assert flow._is_execution_resuming is True
    assert flow.state.counter == 42


def test_suppressed_resume_emits_a_matched_lifecycle_pair() -> None:
    """A suppressed resume emits exactly one start and one finish.

    Both lifecycle events used to be gated on ``suppress_flow_events`` here,
    while the kickoff path emits them either way -- so a suppressed resume was
    invisible in flow telemetry. Ungating only the start would have been worse:
    a start with no terminal event breaks pairing in the other direction.

    The flag is not a gate for emission. It asks for console quiet -- see
    ``_flow_origin`` in ``events/event_listener.py``, which says so and notes it
    "can legitimately be set on a caller's own flow" -- and the listener already
    honours it wherever it prints.

    Counts are asserted exactly, and the resume is a real one that runs to
    completion, so neither an unpaired event nor a swallowed failure can pass.
    """
    from crewai.events.event_bus import crewai_event_bus
    from crewai.events.types.flow_events import (
        FlowFinishedEvent,
        FlowStartedEvent,
    )

    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        suppress_flow_events = True

        @start()
        @human_feedback(message="Review this:")
        def generate(self):
            return "generated content"

        @listen(generate)
        def process(self, feedback_result):
            return f"Processed: {feedback_result.feedback}"

    context = PendingFeedbackContext(
        flow_id="suppressed-resume-1",
        flow_class="test.TestFlow",
        method_name="generate",
        method_output="generated content",
        message="Review this:",
    )
    persistence.save_pending_feedback(
        flow_uuid="suppressed-resume-1",
        context=context,
        state_data={"id": "suppressed-resume-1"},
    )

    flow = TestFlow.from_pending("suppressed-resume-1", persistence)

    seen: list[str] = []
    original_emit = crewai_event_bus.emit

    def capture_emit(source, event):
        if isinstance(event, FlowStartedEvent):
            seen.append("started")
        elif isinstance(event, FlowFinishedEvent):
            seen.append("finished")
        return original_emit(source, event)

    with patch.object(crewai_event_bus, "emit", side_effect=capture_emit):
        result = flow.resume("looks good!")

    assert result is not None
    assert seen.count("started") == 1, f"expected exactly one flow_started on a suppressed resume, got {seen}"
    assert seen.count("finished") == 1, (
        f"expected exactly one flow_finished to pair with it, got {seen} -- "
        f"an unpaired event breaks started/finished pairing and every "
        f"duration built on it"
    )


def test_resume_without_pending_raises_error() -> None:
    """Test that resume raises error without pending context."""

    class TestFlow(Flow):
        @start()
        def begin(self):
            return "started"

    flow = TestFlow()

    with pytest.raises(ValueError, match="No pending feedback context"):
        flow.resume("some feedback")


def test_resume_from_async_context_raises_error() -> None:
    """Test that resume() raises RuntimeError when called from async context."""

    class TestFlow(Flow):
        @start()
        def begin(self):
            return "started"

    async def call_resume_from_async():
        persistence = DjangoFlowPersistence()

        # Save pending feedback
        context = PendingFeedbackContext(
            flow_id="async-context-test",
            flow_class="TestFlow",
            method_name="begin",
            method_output="output",
            message="Review:",
        )
        persistence.save_pending_feedback(
            flow_uuid="async-context-test",
            context=context,
            state_data={"id": "async-context-test"},
        )

        flow = TestFlow.from_pending("async-context-test", persistence)

        # This should raise RuntimeError because we're in an async context
        with pytest.raises(RuntimeError, match="cannot be called from within an async context"):
            flow.resume("feedback")

    asyncio.run(call_resume_from_async())


def test_resume_async_direct() -> None:
    """Test resume_async() can be called directly in async context.

    Upstream is an ``@pytest.mark.asyncio`` coroutine; pytest-asyncio is not
    installed here, so the same body runs under ``asyncio.run``.
    """
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        @human_feedback(message="Review:")
        def generate(self):
            return "content"

        @listen(generate)
        def process(self, result):
            return f"processed: {result.feedback}"

    # Save pending feedback
    context = PendingFeedbackContext(
        flow_id="async-direct-test",
        flow_class="TestFlow",
        method_name="generate",
        method_output="content",
        message="Review:",
    )
    persistence.save_pending_feedback(
        flow_uuid="async-direct-test",
        context=context,
        state_data={"id": "async-direct-test"},
    )

    flow = TestFlow.from_pending("async-direct-test", persistence)

    with patch(EVENT_BUS_EMIT):
        asyncio.run(flow.resume_async("async feedback"))

    assert flow.last_human_feedback is not None
    assert flow.last_human_feedback.feedback == "async feedback"


@patch(EVENT_BUS_EMIT)
def test_resume_basic(mock_emit: MagicMock) -> None:
    """Test basic resume functionality."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        @human_feedback(message="Review this:")
        def generate(self):
            return "generated content"

        @listen(generate)
        def process(self, feedback_result):
            return f"Processed: {feedback_result.feedback}"

    # Manually save pending feedback (simulating async pause)
    context = PendingFeedbackContext(
        flow_id="resume-test-123",
        flow_class="test.TestFlow",
        method_name="generate",
        method_output="generated content",
        message="Review this:",
    )
    persistence.save_pending_feedback(
        flow_uuid="resume-test-123",
        context=context,
        state_data={"id": "resume-test-123"},
    )

    # Restore and resume
    flow = TestFlow.from_pending("resume-test-123", persistence)
    flow.resume("looks good!")

    # Verify feedback was processed
    assert flow.last_human_feedback is not None
    assert flow.last_human_feedback.feedback == "looks good!"
    assert flow.last_human_feedback.output == "generated content"

    # Verify pending feedback was cleared
    assert persistence.load_pending_feedback("resume-test-123") is None


@patch(EVENT_BUS_EMIT)
def test_terminal_resume_without_emit_returns_feedback_result(mock_emit: MagicMock) -> None:
    """Terminal resumed non-emit methods return the full feedback result."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        @human_feedback(message="Review this:", metadata={"stage": "draft"})
        def generate(self):
            return {"content": "generated content"}

    context = PendingFeedbackContext(
        flow_id="terminal-non-emit-test-123",
        flow_class="test.TestFlow",
        method_name="generate",
        method_output={"content": "generated content"},
        message="Review this:",
        metadata={"stage": "draft"},
    )
    persistence.save_pending_feedback(
        flow_uuid="terminal-non-emit-test-123",
        context=context,
        state_data={"id": "terminal-non-emit-test-123"},
    )

    flow = TestFlow.from_pending("terminal-non-emit-test-123", persistence)
    result = flow.resume("looks good!")

    assert isinstance(result, HumanFeedbackResult)
    assert result.output == {"content": "generated content"}
    assert result.feedback == "looks good!"
    assert result.outcome is None
    assert result.metadata == {"stage": "draft"}
    assert flow.method_outputs == [result]


@patch(EVENT_BUS_EMIT)
def test_resume_routing(mock_emit: MagicMock) -> None:
    """Test resume with routing."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        result_path: str = ""

        @start()
        @human_feedback(
            message="Approve?",
            emit=["approved", "rejected"],
            llm="gpt-4o-mini",
        )
        def review(self):
            return "content"

        @listen("approved")
        def handle_approved(self):
            self.result_path = "approved"
            return "Approved!"

        @listen("rejected")
        def handle_rejected(self):
            self.result_path = "rejected"
            return "Rejected!"

    # Save pending feedback
    context = PendingFeedbackContext(
        flow_id="route-test-123",
        flow_class="test.TestFlow",
        method_name="review",
        method_output="content",
        message="Approve?",
        emit=["approved", "rejected"],
        llm="gpt-4o-mini",
    )
    persistence.save_pending_feedback(
        flow_uuid="route-test-123",
        context=context,
        state_data={"id": "route-test-123"},
    )

    # Restore and resume - mock _collapse_to_outcome directly
    flow = TestFlow.from_pending("route-test-123", persistence)

    with patch.object(flow, "_collapse_to_outcome", return_value="approved"):
        flow.resume("yes, this looks great")

    # Verify routing worked
    assert flow.last_human_feedback.outcome == "approved"
    assert flow.result_path == "approved"

    @patch(EVENT_BUS_EMIT)
    def test_terminal_resume_with_emit_returns_method_output(mock_emit: MagicMock) -> None:
        """Terminal resumed emit methods return the original method output."""
        persistence = DjangoFlowPersistence()
        method_output = {"content": "original content", "status": "ready"}

        class TestFlow(Flow):
            @start()
            @human_feedback(
                message="Approve?",
                emit=["approved", "rejected"],
                llm="gpt-4o-mini",
            )
            def review(self):
                return method_output

        context = PendingFeedbackContext(
            flow_id="terminal-route-test-123",
            flow_class="test.TestFlow",
            method_name="review",
            method_output=method_output,
            message="Approve?",
            emit=["approved", "rejected"],
            llm="gpt-4o-mini",
        )
        persistence.save_pending_feedback(
            flow_uuid="terminal-route-test-123",
            context=context,
            state_data={"id": "terminal-route-test-123"},
        )

        flow = TestFlow.from_pending("terminal-route-test-123", persistence)

        with patch.object(flow, "_collapse_to_outcome", return_value="approved"):
            result = flow.resume("yes, this looks great")

        assert result == method_output
        assert flow.method_outputs == [method_output]
        assert flow.last_human_feedback.outcome == "approved"


@patch(EVENT_BUS_EMIT)
def test_resume_records_method_output_before_downstream_listeners(mock_emit: MagicMock) -> None:
    """Downstream listeners can read outputs from the resumed method."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        @human_feedback(message="Review:")
        def review(self):
            return "generated content"

        @listen(review)
        def downstream(self, result):
            self.state["seen_outputs"] = self.method_outputs
            return f"downstream:{result.output}"

    context = PendingFeedbackContext(
        flow_id="listener-output-test-123",
        flow_class="test.TestFlow",
        method_name="review",
        method_output="generated content",
        message="Review:",
    )
    persistence.save_pending_feedback(
        flow_uuid="listener-output-test-123",
        context=context,
        state_data={"id": "listener-output-test-123"},
    )

    flow = TestFlow.from_pending("listener-output-test-123", persistence)
    result = flow.resume("looks good")

    assert result == "downstream:generated content"
    assert len(flow.state["seen_outputs"]) == 1
    seen_output = flow.state["seen_outputs"][0]
    assert isinstance(seen_output, HumanFeedbackResult)
    assert seen_output.output == "generated content"
    assert seen_output.feedback == "looks good"


# =============================================================================
# Pausing through a provider (upstream TestAsyncHumanFeedbackIntegration)
# =============================================================================


@patch(EVENT_BUS_EMIT)
def test_async_provider_pauses_flow(mock_emit: MagicMock) -> None:
    """Test that async provider pauses flow execution."""
    persistence = DjangoFlowPersistence()

    class PausingProvider:
        def __init__(self, persistence: DjangoFlowPersistence):
            self.persistence = persistence

        def request_feedback(self, context: PendingFeedbackContext, flow: Flow) -> str:
            # Save pending state
            self.persistence.save_pending_feedback(
                flow_uuid=context.flow_id,
                context=context,
                state_data=_state_dump(flow),
            )
            raise HumanFeedbackPending(
                context=context,
                callback_info={"saved": True},
            )

    class TestFlow(Flow):
        @start()
        @human_feedback(
            message="Review:",
            provider=PausingProvider(persistence),
        )
        def generate(self):
            return "generated content"

    flow = TestFlow(persistence=persistence)

    # kickoff now returns HumanFeedbackPending instead of raising it
    result = flow.kickoff()

    assert isinstance(result, HumanFeedbackPending)
    assert result.callback_info["saved"] is True

    # Get flow ID from the returned pending context
    flow_id = result.context.flow_id

    # Verify state was persisted
    persisted = persistence.load_pending_feedback(flow_id)
    assert persisted is not None


@patch(EVENT_BUS_EMIT)
def test_full_async_flow_cycle(mock_emit: MagicMock) -> None:
    """Test complete async flow: start -> pause -> resume."""
    persistence = DjangoFlowPersistence()

    flow_id_holder: list[str] = []

    class SaveAndPauseProvider:
        def __init__(self, persistence: DjangoFlowPersistence):
            self.persistence = persistence

        def request_feedback(self, context: PendingFeedbackContext, flow: Flow) -> str:
            flow_id_holder.append(context.flow_id)
            self.persistence.save_pending_feedback(
                flow_uuid=context.flow_id,
                context=context,
                state_data=_state_dump(flow),
            )
            raise HumanFeedbackPending(context=context)

    class ReviewFlow(Flow):
        processed_feedback: str = ""

        @start()
        @human_feedback(
            message="Review this content:",
            provider=SaveAndPauseProvider(persistence),
        )
        def generate(self):
            return "AI generated content"

        @listen(generate)
        def process(self, feedback_result):
            self.processed_feedback = feedback_result.feedback
            return f"Final: {feedback_result.feedback}"

    # Phase 1: Start flow (should pause)
    flow1 = ReviewFlow(persistence=persistence)
    result = flow1.kickoff()

    # kickoff now returns HumanFeedbackPending instead of raising it
    assert isinstance(result, HumanFeedbackPending)
    assert len(flow_id_holder) == 1
    paused_flow_id = flow_id_holder[0]

    # Phase 2: Resume flow
    flow2 = ReviewFlow.from_pending(paused_flow_id, persistence)
    flow2.resume("This is my feedback")

    # Verify feedback was processed
    assert flow2.last_human_feedback.feedback == "This is my feedback"
    assert flow2.processed_feedback == "This is my feedback"


# =============================================================================
# Automatic persistence (upstream TestAutoPersistence)
# =============================================================================


@patch(EVENT_BUS_EMIT)
def test_auto_persistence_when_none_provided(mock_emit: MagicMock, django_default_persistence) -> None:
    """Test that persistence is auto-created when HumanFeedbackPending is raised."""

    class PausingProvider:
        def request_feedback(self, context: PendingFeedbackContext, flow: Flow) -> str:
            raise HumanFeedbackPending(
                context=context,
                callback_info={"paused": True},
            )

    class TestFlow(Flow):
        @start()
        @human_feedback(
            message="Review:",
            provider=PausingProvider(),
        )
        def generate(self):
            return "content"

    # Create flow WITHOUT persistence
    flow = TestFlow()
    assert flow.persistence is None  # No persistence initially

    # kickoff should auto-create persistence when HumanFeedbackPending is raised
    result = flow.kickoff()

    # Should return HumanFeedbackPending (not raise it)
    assert isinstance(result, HumanFeedbackPending)

    # Persistence should have been auto-created
    assert flow.persistence is not None
    # Added in the port: the auto-created backend is the Django one.
    assert isinstance(flow.persistence, DjangoFlowPersistence)

    # The pending feedback should be saved
    flow_id = result.context.flow_id
    loaded = flow.persistence.load_pending_feedback(flow_id)
    assert loaded is not None


# =============================================================================
# LLM config round trip (upstream TestLLMObjectPreservedInContext)
# =============================================================================


@patch(EVENT_BUS_EMIT)
def test_basellm_object_model_string_survives_roundtrip(mock_emit: MagicMock) -> None:
    """Test that when llm is a BaseLLM object, its model string is stored in context
    so that outcome collapsing works after async pause/resume.

    This is the exact bug: locally the sync path keeps the LLM object in memory,
    but in production the async path serializes the context and the LLM object was
    discarded (stored as None), causing resume to skip classification and always
    fall back to emit[0].
    """
    persistence = DjangoFlowPersistence()

    from crewai.llm import LLM

    mock_llm_obj = LLM(
        model="llama3",
        provider="ollama",
        base_url="http://localhost:11434",
    )

    class PausingProvider:
        def __init__(self, persistence: DjangoFlowPersistence):
            self.persistence = persistence
            self.captured_context: PendingFeedbackContext | None = None

        def request_feedback(self, context: PendingFeedbackContext, flow: Flow) -> str:
            self.captured_context = context
            self.persistence.save_pending_feedback(
                flow_uuid=context.flow_id,
                context=context,
                state_data=flow.state if isinstance(flow.state, dict) else flow.state.model_dump(),
            )
            raise HumanFeedbackPending(context=context)

    provider = PausingProvider(persistence)

    class TestFlow(Flow):
        result_path: str = ""

        @start()
        @human_feedback(
            message="Approve?",
            emit=["needs_changes", "approved"],
            llm=mock_llm_obj,
            default_outcome="approved",
            provider=provider,
        )
        def review(self):
            return "content for review"

        @listen("approved")
        def handle_approved(self):
            self.result_path = "approved"
            return "Approved!"

        @listen("needs_changes")
        def handle_changes(self):
            self.result_path = "needs_changes"
            return "Changes needed"

    flow1 = TestFlow(persistence=persistence)
    result = flow1.kickoff()
    assert isinstance(result, HumanFeedbackPending)

    assert provider.captured_context is not None
    assert isinstance(provider.captured_context.llm, dict)
    assert provider.captured_context.llm["model"] == "ollama/llama3"

    flow_id = result.context.flow_id
    loaded = persistence.load_pending_feedback(flow_id)
    assert loaded is not None
    _, loaded_context = loaded
    assert isinstance(loaded_context.llm, dict)
    assert loaded_context.llm["model"] == "ollama/llama3"

    flow2 = TestFlow.from_pending(flow_id, persistence)
    assert flow2._pending_feedback_context is not None
    assert isinstance(flow2._pending_feedback_context.llm, dict)
    assert flow2._pending_feedback_context.llm["model"] == "ollama/llama3"

    with patch.object(flow2, "_collapse_to_outcome", return_value="approved") as mock_collapse:
        flow2.resume("this looks good, proceed!")

    # The key assertion: _collapse_to_outcome was called (not skipped due to llm=None)
    mock_collapse.assert_called_once()
    call_kwargs = mock_collapse.call_args
    assert call_kwargs.kwargs["feedback"] == "this looks good, proceed!"
    assert call_kwargs.kwargs["outcomes"] == ["needs_changes", "approved"]
    # LLM should be a live object (from _human_feedback_llm) or reconstructed, not None
    assert call_kwargs.kwargs["llm"] is not None
    assert getattr(call_kwargs.kwargs["llm"], "model", None) == "llama3"
    assert flow2.last_human_feedback.outcome == "approved"
    assert flow2.result_path == "approved"


# =============================================================================
# Resume edge cases (upstream TestAsyncHumanFeedbackEdgeCases)
# =============================================================================


def test_empty_feedback_uses_default_outcome() -> None:
    """Test that empty feedback uses default outcome during resume."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        def generate(self):
            return "content"

    # Save pending feedback with default_outcome
    context = PendingFeedbackContext(
        flow_id="default-test",
        flow_class="test.Flow",
        method_name="generate",
        method_output="content",
        message="Review:",
        emit=["approved", "rejected"],
        default_outcome="approved",
        llm="gpt-4o-mini",
    )
    persistence.save_pending_feedback(
        flow_uuid="default-test",
        context=context,
        state_data={"id": "default-test"},
    )

    flow = TestFlow.from_pending("default-test", persistence)

    with patch(EVENT_BUS_EMIT):
        flow.resume("")  # Empty feedback

    assert flow.last_human_feedback.outcome == "approved"


def test_resume_without_feedback_uses_default() -> None:
    """Test that resume() can be called without feedback argument."""
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        def step(self):
            return "output"

    context = PendingFeedbackContext(
        flow_id="no-feedback-test",
        flow_class="TestFlow",
        method_name="step",
        method_output="test output",
        message="Review:",
        emit=["approved", "rejected"],
        default_outcome="approved",
        llm="gpt-4o-mini",
    )
    persistence.save_pending_feedback(
        flow_uuid="no-feedback-test",
        context=context,
        state_data={"id": "no-feedback-test"},
    )

    flow = TestFlow.from_pending("no-feedback-test", persistence)

    with patch(EVENT_BUS_EMIT):
        # Call resume() with no arguments - should use default
        flow.resume()

    assert flow.last_human_feedback.outcome == "approved"
    assert flow.last_human_feedback.feedback == ""


# =============================================================================
# LLM resolution on resume (upstream TestResumeLLMFromSerializedContext)
# =============================================================================


@patch(EVENT_BUS_EMIT)
def test_resume_builds_llm_from_serialized_context(mock_emit: MagicMock) -> None:
    persistence = DjangoFlowPersistence()

    class TestFlow(Flow):
        @start()
        @human_feedback(
            message="Approve?",
            emit=["approved", "rejected"],
            llm="gpt-4o-mini",
        )
        def review(self):
            return "content"

    context = PendingFeedbackContext(
        flow_id="fallback-test",
        flow_class="TestFlow",
        method_name="review",
        method_output="content",
        message="Approve?",
        emit=["approved", "rejected"],
        llm="gpt-4o-mini",
    )
    persistence.save_pending_feedback(
        flow_uuid="fallback-test",
        context=context,
        state_data={"id": "fallback-test"},
    )

    flow = TestFlow.from_pending("fallback-test", persistence)

    captured_llm = []

    def capture_llm(feedback, outcomes, llm):
        captured_llm.append(llm)
        return "approved"

    with patch.object(flow, "_collapse_to_outcome", side_effect=capture_llm):
        flow.resume("looks good!")

    assert len(captured_llm) == 1
    from crewai.llms.base_llm import BaseLLM as BaseLLMClass

    assert isinstance(captured_llm[0], BaseLLMClass)
    assert captured_llm[0].model == "gpt-4o-mini"
