"""The review queue as the engine's pause handler: a paused run becomes a review item, a decision its resume.

Registered from `ReviewsConfig.ready()` (see engine/pause_handler.py). The modules that bring CrewAI are
imported when a pause or a resume needs them, so the web process, which only decides, never loads it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from reviewconsole.reviews import selectors, services
from reviewconsole.reviews.models import ReviewItem


class ReviewQueue:
    """Answers every pause of a run with a review item and a reviewer's decision."""

    def feedback_provider(self, *, output_type: str) -> Any:
        from reviewconsole.reviews.provider import ReviewConsoleProvider

        return ReviewConsoleProvider(output_type=output_type)

    def pause_opened(self, *, run_id: Any, pending: Any, context: Any, state: dict) -> None:
        services.review_item_create_for_pause(run_id=run_id, pending=pending, context=context, state=state)

    def resume_claim(self, *, answer_id: str, worker: str) -> Any:
        return services.review_item_claim_resume(item_id=answer_id, worker=worker)

    def resume(self, *, flow_class: type, run: Any, pause: Any, execution: Any, persistence: Any) -> Any:
        from reviewconsole.reviews.resume import resume_paused_flow

        return resume_paused_flow(
            flow_class=flow_class, run=run, pause=pause, execution=execution, persistence=persistence
        )

    def run_cancelled(self, *, run_id: Any) -> None:
        services.review_items_cancel_for_run(run_id=run_id)

    def run_reopened(self, *, run_id: Any) -> bool:
        return services.review_items_reopen_for_run(run_id=run_id)

    def lost_resumes_requeue(self) -> int:
        return services.review_items_requeue_lost_resumes()

    def held_resumes_release(self) -> int:
        return services.review_items_release_held_resumes()

    def runs_purged(self, *, run_ids: list[Any]) -> dict[str, int]:
        return {"review item outputs": services.review_items_purge_data(run_ids=run_ids)}

    def run_pauses(self, *, run_id: Any) -> QuerySet[ReviewItem]:
        return selectors.review_items_of_run(run_id=run_id)
