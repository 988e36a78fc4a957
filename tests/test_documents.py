"""An uploaded PDF is kept with its run, in the documents storage, and shown on the item page as page images."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from reviewconsole.engine import documents
from reviewconsole.engine.models import FlowRun, RunDocument, documents_storage
from reviewconsole.engine.services import runs_purge_expired
from reviewconsole.reviews.models import ReviewItem
from tests.people import client_for, user_in_role
from tests.test_flow_uploads import FILE_FIELD, INVOICE_LINES, START_URL, make_pdf, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def starter() -> Client:
    user = User.objects.create_user("sam")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_flowrun", "add_flowrun"]))
    return client_for(user)


def start_with(starter: Client, content: bytes, name: str = "invoice.pdf"):
    return starter.post(START_URL, {"raw_invoice": "", FILE_FIELD: upload(content, name)})


@pytest.fixture
def uploaded(starter) -> tuple[ReviewItem, RunDocument, bytes]:
    """An invoice started from a two-page PDF, waiting for review: its item, its document and the PDF."""
    pdf = make_pdf(INVOICE_LINES[:2], INVOICE_LINES[2:])
    assert start_with(starter, pdf).status_code == 302
    run = FlowRun.objects.get()
    return ReviewItem.objects.get(run=run), RunDocument.objects.get(run=run), pdf


def page_url(item: ReviewItem, document: RunDocument, page: int | str) -> str:
    return f"/reviews/{item.id}/documents/{document.id}/pages/{page}.png"


# --------------------------------------------------------------------------- keeping the original


def test_the_uploaded_pdf_is_kept_as_it_was_sent_in_the_documents_storage(uploaded, settings):
    item, document, pdf = uploaded

    assert (document.input_name, document.original_name, document.pages) == ("raw_invoice", "invoice.pdf", 2)
    assert document.size == len(pdf) and document.content_type == "application/pdf"
    with storages["documents"].open(document.file.name, "rb") as kept:
        assert kept.read() == pdf
    # The storage the settings name, so a deployment can point it elsewhere.
    location = settings.STORAGES["documents"]["OPTIONS"]["location"]
    assert storages["documents"].path(document.file.name).startswith(location)
    # The flow still reads the text, page by page.
    assert item.run.inputs["raw_invoice"].split("\n\n") == ["\n".join(INVOICE_LINES[:2]), "\n".join(INVOICE_LINES[2:])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"\x00" * 64, "invoice.pdf is not a PDF"),
        (b"%PDF-1.4\n\x00\x00\x00 junk", "invoice.pdf could not be read as a PDF"),
    ],
    ids=["empty", "NUL bytes", "junk after a PDF header"],
)
def test_a_file_that_is_not_a_readable_pdf_is_a_form_error_and_nothing_is_kept(starter, content, message):
    response = start_with(starter, content)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not FlowRun.objects.exists() and not RunDocument.objects.exists()
    assert not storages["documents"].exists("originals")


def test_a_file_over_the_size_cap_is_a_form_error(starter, monkeypatch):
    pdf = make_pdf(INVOICE_LINES)
    monkeypatch.setattr("reviewconsole.engine.uploads.MAX_UPLOAD_BYTES", len(pdf) - 1)

    response = start_with(starter, pdf)

    assert "files up to" in response.content.decode()
    assert not RunDocument.objects.exists()


# --------------------------------------------------------------------------- the page images


def test_the_item_page_shows_each_page_lazily_with_alt_text(uploaded):
    item, document, _ = uploaded
    content = client_for(user_in_role("rita", "reviewer", "invoice")).get(reverse("reviews:item", args=[item.id]))

    html = content.content.decode()
    for page in (1, 2):
        assert f'src="{page_url(item, document, page)}" loading="lazy"' in html
        assert f'alt="Page {page} of 2 of invoice.pdf, as uploaded"' in html


def test_a_page_is_drawn_once_at_reading_width_and_revalidated_by_its_etag(uploaded):
    item, document, _ = uploaded
    rita = client_for(user_in_role("rita", "reviewer", "invoice"))

    response = rita.get(page_url(item, document, 2))

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.width == documents.PAGE_WIDTH_PX and image.height > image.width  # a portrait page
    assert "private" in response["Cache-Control"] and "max-age=86400" in response["Cache-Control"]
    # Kept in the storage: the next request reads it instead of drawing again.
    stored = storages["documents"].listdir(f"renders/{document.id}")[1]
    assert stored == [f"page-2-w{documents.PAGE_WIDTH_PX}.png"]
    again = rita.get(page_url(item, document, 2))
    assert again.content == response.content
    assert rita.get(page_url(item, document, 2), headers={"If-None-Match": response["ETag"]}).status_code == 304
    # Another page has another image and another ETag.
    assert rita.get(page_url(item, document, 1))["ETag"] != response["ETag"]


def test_a_page_the_document_does_not_have_or_a_page_that_is_not_a_number_is_refused(uploaded):
    item, document, _ = uploaded
    rita = client_for(user_in_role("rita", "reviewer", "invoice"))

    for page in (0, 3, 99999999999):
        assert rita.get(page_url(item, document, page)).status_code == 404, page
    # No such route (404), or a NUL the console refuses in any URL (400).
    for page in ("one", "-1", "1.5", "%00"):
        assert rita.get(page_url(item, document, page)).status_code in (400, 404), page


def test_the_page_is_seen_only_by_who_may_see_the_item(uploaded, client):
    item, document, _ = uploaded
    url = page_url(item, document, 1)

    assert client.get(url).status_code == 302  # to the login page
    assert client_for(User.objects.create_user("nobody")).get(url).status_code == 403
    assert client_for(user_in_role("arthur", "reviewer", "article_draft")).get(url).status_code == 404
    assert client_for(user_in_role("rita", "reviewer", "invoice")).get(url).status_code == 200


def test_a_document_of_another_run_is_404_through_this_item(uploaded, starter):
    item, _, _ = uploaded
    assert start_with(starter, make_pdf(["Vendor: Other Ltd", "Total: 1.00"])).status_code == 302
    other = RunDocument.objects.exclude(run=item.run).get()

    assert client_for(user_in_role("rita", "reviewer", "invoice")).get(page_url(item, other, 1)).status_code == 404


def test_a_document_that_can_no_longer_be_drawn_is_404_not_500(uploaded):
    item, document, _ = uploaded
    with storages["documents"].open(document.file.name, "wb") as kept:
        kept.write(b"%PDF-1.4\ndamaged since")

    assert client_for(user_in_role("rita", "reviewer", "invoice")).get(page_url(item, document, 1)).status_code == 404


# --------------------------------------------------------------------------- retention


def test_retention_deletes_the_document_and_its_drawn_pages_with_the_runs_inputs(uploaded):
    item, document, _ = uploaded
    assert client_for(user_in_role("rita", "reviewer", "invoice")).get(page_url(item, document, 1)).status_code == 200
    storage = documents_storage()
    drawn = storage.listdir(f"renders/{document.id}")[1]
    assert drawn and storage.exists(document.file.name)
    FlowRun.objects.filter(id=item.run_id).update(finished_at=timezone.now() - timedelta(days=31))

    removed = runs_purge_expired(days=30)

    assert removed["runs"] == 1 and removed["uploaded documents"] == 1
    assert not RunDocument.objects.filter(id=document.id).exists()
    assert not storage.exists(document.file.name)
    assert not any(storage.exists(f"renders/{document.id}/{name}") for name in drawn)
