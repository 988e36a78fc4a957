"""A flow input that takes a file: a PDF's text becomes the input, bad files get a form error."""

from __future__ import annotations

import functools
import resource
import zlib

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pydantic import BaseModel, Field

from flows.invoices import InvoiceInputs
from reviewconsole.engine import uploads
from reviewconsole.engine.forms import UPLOAD_SUFFIX, FlowInputForm
from reviewconsole.engine.models import FlowRun
from reviewconsole.engine.uploads import UploadError, convert_upload
from reviewconsole.simple_pdf import assemble_pdf, text_pdf

INVOICE_LINES = ["Vendor: Paper Mill (North) Ltd", "Invoice Number: PM-88", "Invoice Date: 2026-10-02", "Total: 42.00"]
FILE_FIELD = "raw_invoice" + UPLOAD_SUFFIX


def make_pdf(*pages: list[str]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per entry, a page per list."""
    return text_pdf(*pages)


def upload(content: bytes, name: str = "invoice.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


# --------------------------------------------------------------------------- conversion


def test_pdf_text_is_extracted_page_by_page():
    text = convert_upload("pdf", upload(make_pdf(INVOICE_LINES[:2], INVOICE_LINES[2:])))

    assert text.split("\n\n") == ["\n".join(INVOICE_LINES[:2]), "\n".join(INVOICE_LINES[2:])]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"Vendor: Acme\nTotal: 10.00\n", "invoice.txt", "invoice.txt is not a PDF"),
        (b"%PDF-1.4\nthis is not really a PDF", "broken.pdf", "broken.pdf could not be read as a PDF"),
        (make_pdf(INVOICE_LINES)[:200], "cut.pdf", "cut.pdf could not be read as a PDF"),
        (make_pdf([]), "scan.pdf", "scan.pdf contains no text"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(content, name, message):
    with pytest.raises(UploadError, match=message):
        convert_upload("pdf", upload(content, name))


def test_size_and_page_limits(monkeypatch):
    pdf = make_pdf(["one"], ["two"], ["three"])
    monkeypatch.setattr(uploads, "MAX_PDF_PAGES", 2)
    with pytest.raises(UploadError, match="has 3 pages; up to 2 are read"):
        convert_upload("pdf", upload(pdf))

    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", len(pdf) - 1)
    with pytest.raises(UploadError, match=r"invoice\.pdf is .*; files up to"):
        convert_upload("pdf", upload(pdf))


# --------------------------------------------------------------------------- expensive PDFs

TOO_EXPENSIVE = "This PDF is too large or complex to read: "


@functools.cache
def decompression_bomb(megabytes: int = 500) -> bytes:
    """One page whose content stream is `megabytes` MB of zeros, Flate-compressed twice into about 2 KB."""
    zeros, inner = bytes(1024 * 1024), zlib.compressobj(9)
    once = b"".join(inner.compress(zeros) for _ in range(megabytes)) + inner.flush()
    return assemble_pdf([zlib.compress(once, 9)], "[/FlateDecode /FlateDecode]")


def operator_flood(operator: bytes, count: int) -> bytes:
    """One page whose compressed content stream repeats `operator` `count` times inside one text object."""
    return assemble_pdf([zlib.compress(b"BT /F1 1 Tf 0 0 Td " + operator * count + b"ET", 9)], "/FlateDecode")


@pytest.fixture
def tight_limits(monkeypatch):
    """Lower limits than production, so that each refusal comes sooner; a normal invoice reads within them."""
    monkeypatch.setattr(uploads, "PDF_MEMORY_BYTES", 160 * 1024 * 1024)
    monkeypatch.setattr(uploads, "PDF_CPU_SECONDS", 2)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(decompression_bomb, id="decompression bomb"),
        pytest.param(lambda: operator_flood(b"(x) Tj ", 3_000_000), id="three million text operators"),
    ],
)
def test_a_pdf_too_expensive_to_read_is_refused_and_the_server_process_stays_small(tight_limits, build):
    pdf = build()
    assert len(pdf) < 50_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    with pytest.raises(UploadError, match=f"^{TOO_EXPENSIVE}"):
        convert_upload("pdf", upload(pdf))

    # The parsing happened in a child process: this one never held the inflated stream or the parsed page.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100 * 1024
    # The same limits leave room for a real invoice.
    assert convert_upload("pdf", upload(make_pdf(INVOICE_LINES))) == "\n".join(INVOICE_LINES)


def test_a_pdf_that_keeps_the_parser_busy_is_stopped_by_the_cpu_limit(monkeypatch):
    monkeypatch.setattr(uploads, "PDF_CPU_SECONDS", 1)
    # Save and restore the graphics state, ten million times: little memory, much work.
    with pytest.raises(UploadError, match=f"^{TOO_EXPENSIVE}reading it needs more than 1 seconds of CPU time"):
        convert_upload("pdf", upload(operator_flood(b"q Q ", 10_000_000)))


def test_a_pdf_that_keeps_the_parser_waiting_is_stopped_by_the_wall_clock(monkeypatch):
    monkeypatch.setattr(uploads, "PDF_WALL_SECONDS", 1)
    with pytest.raises(UploadError, match=f"^{TOO_EXPENSIVE}reading it took longer than 1 seconds"):
        convert_upload("pdf", upload(operator_flood(b"q Q ", 10_000_000)))


def test_text_beyond_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PDF_TEXT_CHARS", 20)
    with pytest.raises(UploadError, match=f"^{TOO_EXPENSIVE}its text is longer than 20 characters"):
        convert_upload("pdf", upload(make_pdf(INVOICE_LINES)))


# --------------------------------------------------------------------------- the generated form


def test_form_offers_a_pdf_field_beside_the_text_and_no_longer_requires_the_text():
    form = FlowInputForm(InvoiceInputs)

    assert list(form.fields) == ["raw_invoice", FILE_FIELD]
    assert form.is_multipart()
    assert form.fields[FILE_FIELD].widget.attrs["accept"] == ".pdf,application/pdf"
    assert "required" not in form.fields["raw_invoice"].widget.attrs


def test_form_uses_the_pdf_text_as_the_input():
    form = FlowInputForm(InvoiceInputs, {"raw_invoice": ""}, {FILE_FIELD: upload(make_pdf(INVOICE_LINES))})

    assert form.is_valid(), form.errors
    assert form.inputs == {"raw_invoice": "\n".join(INVOICE_LINES)}


def test_form_still_takes_typed_text_and_requires_one_or_the_other():
    typed = FlowInputForm(InvoiceInputs, {"raw_invoice": "Vendor: Acme"}, {})
    assert typed.is_valid() and typed.inputs == {"raw_invoice": "Vendor: Acme"}

    neither = FlowInputForm(InvoiceInputs, {"raw_invoice": ""}, {})
    assert not neither.is_valid()
    assert neither.errors["raw_invoice"] == ["Field required"]


def test_form_refuses_text_and_file_together():
    form = FlowInputForm(InvoiceInputs, {"raw_invoice": "Vendor: Acme"}, {FILE_FIELD: upload(make_pdf(INVOICE_LINES))})

    assert not form.is_valid()
    assert form.errors[FILE_FIELD] == ["Paste the text or upload a file, not both."]


def test_any_text_input_can_declare_an_upload_and_unknown_kinds_are_named():
    class Contract(BaseModel):
        title: str
        body: str = Field(json_schema_extra={"upload": "pdf"})

    files = {"body" + UPLOAD_SUFFIX: upload(make_pdf(["Clause 1"]))}
    form = FlowInputForm(Contract, {"title": "NDA", "body": ""}, files)
    assert form.is_valid(), form.errors
    assert form.inputs == {"title": "NDA", "body": "Clause 1"}

    class Scanned(BaseModel):
        body: str = Field(json_schema_extra={"upload": "tiff"})

    with pytest.raises(ImproperlyConfigured, match="Input 'body': No upload converter for 'tiff' \\(known: pdf\\)"):
        FlowInputForm(Scanned)


# --------------------------------------------------------------------------- the start page


@pytest.fixture
def starter() -> Client:
    user = User.objects.create_user("sam")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_flowrun", "add_flowrun"]))
    client = Client()
    client.force_login(user)
    return client


START_URL = reverse("engine:flow_start", args=["invoice_processing"])


@pytest.mark.django_db
def test_start_page_is_a_multipart_form_with_a_pdf_picker(starter):
    content = starter.get(START_URL).content.decode()

    assert 'enctype="multipart/form-data"' in content
    assert f'type="file" name="{FILE_FIELD}" accept=".pdf,application/pdf"' in content


@pytest.mark.django_db(transaction=True)
def test_uploading_a_pdf_starts_a_run_on_its_text(starter):
    response = starter.post(START_URL, {"raw_invoice": "", FILE_FIELD: upload(make_pdf(INVOICE_LINES))})

    run = FlowRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("engine:run_detail", args=[run.id])
    assert run.inputs == {"raw_invoice": "\n".join(INVOICE_LINES)}
    assert run.state["invoice"]["vendor"] == "Paper Mill (North) Ltd"


@pytest.mark.django_db
def test_uploading_a_bad_file_shows_the_error_on_the_form_and_starts_nothing(starter):
    response = starter.post(START_URL, {"raw_invoice": "", FILE_FIELD: upload(b"<script>x</script>", "évil.pdf")})

    assert response.status_code == 200
    content = response.content.decode()
    assert "évil.pdf is not a PDF. Upload a PDF, or paste the text." in content
    assert "<script>x" not in content
    assert not FlowRun.objects.exists()


@pytest.mark.django_db
def test_uploading_a_decompression_bomb_shows_the_error_on_the_form_and_starts_nothing(starter, tight_limits):
    response = starter.post(START_URL, {"raw_invoice": "", FILE_FIELD: upload(decompression_bomb(), "bomb.pdf")})

    assert response.status_code == 200
    assert TOO_EXPENSIVE in response.content.decode()
    assert not FlowRun.objects.exists()
