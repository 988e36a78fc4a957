"""The content flow on the offline demo model: research loop, drafting, gate, publish or revise."""

import pytest

from flows.content import MAX_DEEPEN_PASSES, MAX_REVISIONS, SAMPLE_INPUTS, ResearchOutput, research_is_sufficient
from flows.content_demo import breadth, demo_research
from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import Checkpoint, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.services import decide

BROAD = "Remote work and productivity"
NARROW = "Beekeeping cooperatives in rural Portugal"
VAGUE = "Quasicrystals"


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita")


def start(topic):
    run = run_create(flow_name="content_production", inputs={"topic": topic})
    run.refresh_from_db()
    return run


def pending_item(run):
    return ReviewItem.objects.get(run=run, status=ReviewStatus.PENDING)


def research_outcomes(run):
    """The labels evaluate_research returned, in order."""
    rows = Checkpoint.objects.filter(flow_uuid=str(run.id), method="evaluate_research").order_by("sequence")
    return list(rows.values_list("outcome", flat=True))


def reject(item, reviewer, comment):
    decide(item_id=item.id, user=reviewer, outcome="rejected", comment=comment, reason_code="incomplete")


def research_prompt(topic, research_pass):
    return f"Research the topic below.\nTopic: {topic}\nResearch pass: {research_pass}\nEarlier findings: none\n"


def test_demo_research_depth_follows_the_topic():
    assert [breadth(BROAD), breadth(NARROW), breadth(VAGUE)] == ["broad", "narrow", "vague"]
    passes = {
        topic: [ResearchOutput.model_validate(demo_research(research_prompt(topic, n))) for n in range(3)]
        for topic in (BROAD, NARROW, VAGUE)
    }
    assert research_is_sufficient(passes[BROAD][0])
    assert not research_is_sufficient(passes[NARROW][0]) and research_is_sufficient(passes[NARROW][1])
    assert not any(research_is_sufficient(found) for found in passes[VAGUE])
    # Each deeper pass adds findings and confidence, even where it stays thin.
    for found in passes.values():
        sources = [len(f.sources) for f in found]
        assert sources[0] < sources[1] < sources[2]
        assert found[0].confidence < found[1].confidence < found[2].confidence


def test_sample_inputs_cover_every_research_branch():
    assert {breadth(inputs["topic"]) for inputs in SAMPLE_INPUTS.values()} == {"broad", "narrow", "vague"}


@pytest.mark.django_db(transaction=True)
def test_sufficient_research_goes_straight_to_writing_and_publishes_on_approval(reviewer):
    run = start(BROAD)
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert research_outcomes(run) == ["sufficient"]
    item = pending_item(run)
    assert item.output_type == "article_draft"
    assert item.reason == "always_review"  # a new type starts fully reviewed
    assert item.output["title"].startswith(BROAD)
    assert len(item.output["sources"]) >= 3

    decide(item_id=item.id, user=reviewer, outcome="approved")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "published"
    assert run.result["reviewed"] is True
    assert run.result["article"] == item.output
    assert run.result["deepen_passes"] == 0 and run.result["research_thin"] is False


@pytest.mark.django_db(transaction=True)
def test_insufficient_research_is_deepened_until_sufficient():
    run = start(NARROW)
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert research_outcomes(run) == ["insufficient", "sufficient"]
    assert run.state["deepen_passes"] == 1
    assert run.state["research_thin"] is False
    assert pending_item(run).reason == "always_review"


@pytest.mark.django_db(transaction=True)
def test_research_that_stays_thin_is_capped_and_the_draft_is_forced_to_review(reviewer):
    run = start(VAGUE)
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert research_outcomes(run) == ["insufficient"] * MAX_DEEPEN_PASSES + ["thin_research"]
    assert run.state["research_thin"] is True
    assert pending_item(run).reason == "thin_research"

    decide(item_id=pending_item(run).id, user=reviewer, outcome="approved")
    run.refresh_from_db()
    assert run.result["stage"] == "published"
    assert run.result["research_thin"] is True
    assert run.result["deepen_passes"] == MAX_DEEPEN_PASSES


@pytest.mark.django_db(transaction=True)
def test_confident_draft_is_published_without_review_once_the_threshold_allows():
    policy_update(
        output_type="article_draft", changes={"threshold": 0.8, "audit_rate": 0.0}, by=None, reason="test autonomy"
    )
    run = start(BROAD)
    assert run.status == RunStatus.COMPLETED, run.error
    assert not ReviewItem.objects.filter(run=run).exists()
    assert run.result["stage"] == "published"
    assert run.result["reviewed"] is False
    assert run.result["article"]["confidence"] >= 0.8


@pytest.mark.django_db(transaction=True)
def test_thin_research_is_reviewed_even_above_the_threshold():
    policy_update(output_type="article_draft", changes={"threshold": 0.0, "audit_rate": 0.0}, by=None, reason="test")
    run = start(VAGUE)
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert pending_item(run).reason == "thin_research"


@pytest.mark.django_db(transaction=True)
def test_rejection_revises_with_the_reviewers_notes_and_the_revision_is_reviewed(reviewer):
    run = start(BROAD)
    first = pending_item(run)
    reject(first, reviewer, "Open with the strongest figure.")

    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    second = pending_item(run)
    assert second.id != first.id
    assert second.reason == "revision"
    assert "Open with the strongest figure." in second.output["body"]
    assert second.output["body"] != first.output["body"]

    edited = {**second.output, "title": "Remote work: the numbers"}
    decide(item_id=second.id, user=reviewer, outcome="approved", edited_output=edited)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "published"
    assert run.result["revisions"] == 1
    assert run.result["article"]["title"] == "Remote work: the numbers"
    assert run.result["reviewer_notes"] == ["Open with the strongest figure."]


@pytest.mark.django_db(transaction=True)
def test_rejections_beyond_the_revision_limit_abandon_the_article(reviewer):
    run = start(BROAD)
    notes = [f"Still not right ({n})" for n in range(MAX_REVISIONS + 1)]
    for note in notes:
        reject(pending_item(run), reviewer, note)

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "abandoned"
    assert run.result["revisions"] == MAX_REVISIONS
    assert run.result["reviewer_notes"] == notes
    # Every rewrite answered the notes it was given; the last note had no rewrite left.
    assert all(note in run.result["last_draft"]["body"] for note in notes[:-1])
    assert notes[-1] not in run.result["last_draft"]["body"]
    assert ReviewItem.objects.filter(run=run).count() == MAX_REVISIONS + 1
    assert not ReviewItem.objects.filter(run=run, status=ReviewStatus.PENDING).exists()
