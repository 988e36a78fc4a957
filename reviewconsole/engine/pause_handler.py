"""Who answers a paused run: the engine hands every pause to the app that registered itself here.

The engine runs flows and records where one pauses (a PendingFeedback row), but what a pause becomes, and how
its answer reaches the flow, is decided above it: the reviews app turns a pause into a review item, a
reviewer's decision into a resume. That app registers one PauseHandler from its `AppConfig.ready()`, as it
registers its reviewer scopes with `selectors.register_output_type_scope`; the engine calls the handler
without importing, or knowing, who answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from crewai.flow.async_feedback.types import HumanFeedbackProvider, PendingFeedbackContext

    from reviewconsole.engine.context import Execution
    from reviewconsole.engine.models import FlowRun, PendingFeedback
    from reviewconsole.engine.persistence import DjangoFlowPersistence


class PauseHandler(Protocol):
    """What the engine asks of the app that answers pauses. Each call names its transaction in its docstring."""

    def feedback_provider(self, *, output_type: str) -> HumanFeedbackProvider:
        """The CrewAI provider for a `@human_feedback` step that names none, pausing an output of `output_type`."""

    def pause_opened(
        self, *, run_id: Any, pending: PendingFeedback, context: PendingFeedbackContext, state: dict
    ) -> None:
        """A run paused: called inside the transaction that records the pause, to move the run and queue the pause."""

    def resume_claim(self, *, answer_id: str, worker: str) -> Any:
        """Take the run that answer `answer_id` (the id `resume_flow` was queued with) resumes; its id, or None."""

    def resume(
        self,
        *,
        flow_class: type,
        run: FlowRun,
        pause: PendingFeedback,
        execution: Execution,
        persistence: DjangoFlowPersistence,
    ) -> Any:
        """Restore the flow from its open pause, hand it the answer, and continue it; the flow's outcome."""

    def run_cancelled(self, *, run_id: Any) -> None:
        """Inside a run's cancel transaction: withdraw its open pauses (raise RunStateError to refuse)."""

    def run_reopened(self, *, run_id: Any) -> bool:
        """Inside a retry's transaction: put a pause withdrawn by a cancel back to be answered; False if none."""

    def lost_resumes_requeue(self) -> int:
        """Queue `resume_flow` again for answers whose task was lost with a worker; how many."""

    def held_resumes_release(self) -> int:
        """Queue `resume_flow` for answers held back for a while (an undo window) that may now resume; how many.

        Called by every worker's heartbeat, every few seconds: cheap when there is nothing to release."""

    def runs_purged(self, *, run_ids: list[Any]) -> dict[str, int]:
        """Inside a retention purge's transaction: drop the copies of these runs' inputs and outputs the answers
        keep (the answers themselves stay); the counts removed per kind."""

    def run_pauses(self, *, run_id: Any) -> Any:
        """The records of the run's pauses (with their answers), oldest first, for the run's page and API."""


_handler: PauseHandler | None = None


def register_pause_handler(handler: PauseHandler) -> None:
    """Install the one app that answers pauses (the reviews app, from its `AppConfig.ready()`)."""
    global _handler
    _handler = handler


def pause_handler() -> PauseHandler:
    """The registered handler; without one a pause could never be answered, so nothing may pause."""
    if _handler is None:
        raise ImproperlyConfigured(
            "No app answers paused flow runs: add 'reviewconsole.reviews' to INSTALLED_APPS "
            "(its AppConfig.ready() registers the pause handler)."
        )
    return _handler
