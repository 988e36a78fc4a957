"""Keys of outputs for duplicate lookups, written for every output a type's checks may later compare with.

Its own module, below the review and gate services, so that both write keys the same way: the review
services for an output sent to a person, the gate for one it lets through.
"""

from datetime import datetime
from typing import Any

from reviewconsole.engine.checks import match_keys
from reviewconsole.reviews.models import ReviewItem, ReviewItemKey


def output_keys_record(
    *, output_type: str, output: Any, run_id: Any, created_at: datetime, item: ReviewItem | None = None
) -> None:
    """Store the output's duplicate-lookup keys (none when its type declares no keys)."""
    ReviewItemKey.objects.bulk_create(
        ReviewItemKey(item=item, run_id=run_id, output_type=output_type, key=key, created_at=created_at)
        for key in match_keys(output_type, output)
    )
