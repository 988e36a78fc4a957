"""The lead flow on the offline demo model: validation, enrichment, scoring branches, outreach review, memory."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from flows.leads import HOT_SCORE, SAMPLE_INPUTS, WARM_SCORE, company_key, lead_errors
from reviewconsole.engine.models import Checkpoint, FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.recall import latest_completed_run
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide

HOT = SAMPLE_INPUTS["hot: software enterprise, CEO contact"]
WARM = SAMPLE_INPUTS["warm: mid-market analytics, named contact"]
RETURNING = SAMPLE_INPUTS["hot on return: same company again, remembered"]
COLD = SAMPLE_INPUTS["cold: small bakery, shared mailbox"]
FREE_MAIL = SAMPLE_INPUTS["invalid: free-mail address"]
MALFORMED = SAMPLE_INPUTS["invalid: malformed email, no company"]


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita")


def start(inputs):
    run = run_create(flow_name="lead_enrichment", inputs=inputs)
    run.refresh_from_db()
    return run


def ran(run, method):
    return Checkpoint.objects.filter(flow_uuid=str(run.id), method=method).exists()


def test_company_key_ignores_case_punctuation_and_legal_form():
    assert company_key("Globex Analytics Inc.") == company_key("  GLOBEX analytics ") == "globex analytics"
    assert company_key("Acme Ltd") != company_key("Acme Labs")
    assert company_key("Inc") == "inc"  # a name that is only a legal form is still a name


def test_lead_errors_name_the_field_and_the_problem():
    assert lead_errors("Acme", "ops@acme.com") == []
    assert lead_errors("", "ops@acme") == [
        "company_name: required",
        "contact_email: 'ops@acme' is not an email address",
    ]
    assert lead_errors("Acme", "jo@gmail.com") == [
        "contact_email: gmail.com is a free-mail domain; a business address is needed"
    ]


@pytest.mark.django_db(transaction=True)
def test_invalid_lead_completes_with_its_errors_and_is_not_enriched():
    run = start(MALFORMED)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "invalid"
    assert run.result["errors"] == ["company_name: required", "contact_email: 'not-an-email' is not an email address"]
    assert "company_key" not in run.result
    assert not ran(run, "enrich_company")


@pytest.mark.django_db(transaction=True)
def test_free_mail_lead_is_invalid():
    run = start(FREE_MAIL)
    assert run.result["stage"] == "invalid"
    assert run.result["errors"] == ["contact_email: gmail.com is a free-mail domain; a business address is needed"]


@pytest.mark.django_db(transaction=True)
def test_hot_lead_gets_outreach_that_an_executive_contact_forces_to_review(reviewer):
    run = start(HOT)
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    assert run.state["score"]["score"] >= HOT_SCORE
    item = ReviewItem.objects.get(run=run)
    assert item.output_type == "outreach_email"
    assert item.reason == "executive_contact"
    assert item.output["to"] == HOT["contact_email"]
    assert "Initech Software Group" in item.output["subject"]

    edited = {**item.output, "subject": "Initech: a quick question"}
    decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=edited)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "outreach_ready"
    assert run.result["reviewed"] is True
    assert run.result["outreach"]["subject"] == "Initech: a quick question"
    assert run.result["company"]["industry"] == "Software"


@pytest.mark.django_db(transaction=True)
def test_rejected_outreach_ends_outreach_rejected(reviewer):
    run = start(HOT)
    item = ReviewItem.objects.get(run=run)
    decide(item_id=item.id, user=reviewer, outcome="rejected", comment="Too pushy", reason_code="wrong_data")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "outreach_rejected"
    assert run.result["rejected_outreach"] == item.output


@pytest.mark.django_db(transaction=True)
def test_warm_lead_is_nurtured_without_outreach():
    run = start(WARM)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "nurture"
    assert WARM_SCORE <= run.result["score"]["score"] < HOT_SCORE
    assert run.result["contact"]["full_name"] == "Jane Doe"
    assert not ReviewItem.objects.filter(run=run).exists()
    assert not ran(run, "draft_outreach")


@pytest.mark.django_db(transaction=True)
def test_cold_lead_is_archived():
    run = start(COLD)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["stage"] == "archived"
    assert run.result["score"]["score"] < WARM_SCORE
    assert run.result["contact"]["seniority"] == "mailbox"


@pytest.mark.django_db(transaction=True)
def test_a_returning_company_is_recalled_and_scores_as_a_repeat_contact():
    first = start(WARM)
    assert first.result["stage"] == "nurture" and first.result["recalled_from"] is None

    again = start(RETURNING)  # same company, other spelling, other contact
    assert again.status == RunStatus.WAITING_REVIEW, again.error
    assert again.state["known"]["run_id"] == str(first.id)
    assert again.state["known"]["stage"] == "nurture"
    assert again.state["score"]["score"] == first.result["score"]["score"] + 15
    assert any("returning company" in reason for reason in again.state["score"]["reasons"])
    item = ReviewItem.objects.get(run=again)
    assert item.reason == "always_review"  # staff contact: the policy decides, nothing forced
    assert "again" in item.output["body"]


@pytest.mark.django_db(transaction=True)
def test_a_known_company_keeps_the_profile_an_earlier_run_established():
    first = start(WARM)
    # What an earlier run concluded (here: corrected) is what the next run starts from.
    corrected = {**first.result["company"], "industry": "Aerospace", "size_band": "enterprise", "employees": 12000}
    FlowRun.objects.filter(id=first.id).update(result={**first.result, "company": corrected})

    again = start(RETURNING)
    company = again.state["company"]
    assert (company["industry"], company["size_band"], company["employees"]) == ("Aerospace", "enterprise", 12000)


@pytest.mark.django_db
def test_recall_finds_the_latest_completed_run_for_the_key():
    now = timezone.now()

    def run(flow_name="lead_enrichment", status=RunStatus.COMPLETED, key="globex", minutes_ago=0):
        return FlowRun.objects.create(
            flow_name=flow_name,
            status=status,
            result={"company_key": key},
            finished_at=now - timedelta(minutes=minutes_ago),
        )

    older = run(minutes_ago=10)
    assert latest_completed_run(flow_name="lead_enrichment", result_key="company_key", value="globex") == older
    newer = run(minutes_ago=5)
    run(status=RunStatus.FAILED)
    run(flow_name="content_production")
    run(key="initech")
    assert latest_completed_run(flow_name="lead_enrichment", result_key="company_key", value="globex") == newer
    assert latest_completed_run(flow_name="lead_enrichment", result_key="company_key", value="hooli") is None


@pytest.mark.django_db
def test_flow_list_api_offers_all_three_flows(django_user_model):
    user = django_user_model.objects.create_user("olga")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="engine", codename="view_flowrun"))
    client = Client()
    client.force_login(user)
    response = client.get("/api/v1/flows")
    assert response.status_code == 200
    flows = {flow["name"]: flow for flow in response.json()}
    assert {"invoice_processing", "content_production", "lead_enrichment"} <= set(flows)
    assert flows["content_production"]["output_types"] == ["article_draft"]
    assert flows["lead_enrichment"]["output_types"] == ["outreach_email"]
    assert set(flows["lead_enrichment"]["input_schema"]["properties"]) == {"company_name", "contact_email"}
