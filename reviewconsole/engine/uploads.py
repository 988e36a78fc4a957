"""Files a flow input accepts instead of typed text, and how each kind becomes that text.

A flow's input model opts in per field::

    raw_invoice: str = Field(json_schema_extra={"widget": "textarea", "upload": "pdf"})

The start form then offers a file field beside the text box; an uploaded file
is converted here and validated by the input model like typed text, so the
flow itself only ever sees a string. Add a kind with `register_converter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from pydantic.fields import FieldInfo

# A real invoice PDF is a few hundred kilobytes; the caps keep one upload from
# tying up a web worker in the PDF parser.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 50


class UploadError(ValueError):
    """An uploaded file that cannot become text; the message is shown next to the file field."""


@dataclass(frozen=True)
class Converter:
    """One kind of upload: what the file field shows and accepts, and how a file becomes text."""

    kind: str
    label: str  # for people: "PDF"
    accept: str  # the file input's `accept` attribute, so the browser's picker offers the right files
    to_text: Callable[[UploadedFile], str]


_converters: dict[str, Converter] = {}


def register_converter(converter: Converter) -> None:
    _converters[converter.kind] = converter


def upload_kind(info: FieldInfo) -> str | None:
    """The upload kind a model field declares (`json_schema_extra={"upload": ...}`), if any."""
    extra = info.json_schema_extra
    kind = extra.get("upload") if isinstance(extra, dict) else None
    return str(kind) if kind else None


def get_converter(kind: str) -> Converter:
    """The converter for `kind`; an unknown kind is a flow author's mistake, named with the known ones."""
    try:
        return _converters[kind]
    except KeyError:
        raise LookupError(f"No upload converter for '{kind}' (known: {', '.join(sorted(_converters))})") from None


def convert_upload(kind: str, upload: UploadedFile) -> str:
    """The text of `upload` read as `kind`; raises UploadError with a message for the person who sent it."""
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        limit = filesizeformat(MAX_UPLOAD_BYTES)
        raise UploadError(f"{upload.name} is {filesizeformat(upload.size)}; files up to {limit} are accepted.")
    return get_converter(kind).to_text(upload)


def pdf_to_text(upload: UploadedFile) -> str:
    """The text of every page, pages separated by a blank line (pdfplumber's layout-free extraction)."""
    import pdfplumber  # only the start form needs it: kept off every other page's import path

    upload.seek(0)
    if not upload.read(5).startswith(b"%PDF-"):
        raise UploadError(f"{upload.name} is not a PDF. Upload a PDF, or paste the text.")
    upload.seek(0)
    try:
        with pdfplumber.open(upload) as pdf:
            if len(pdf.pages) > MAX_PDF_PAGES:
                raise UploadError(f"{upload.name} has {len(pdf.pages)} pages; up to {MAX_PDF_PAGES} are read.")
            pages = [page.extract_text() or "" for page in pdf.pages]
    except UploadError:
        raise
    except Exception as error:  # a damaged file can fail anywhere in the parser, with any error type
        raise UploadError(f"{upload.name} could not be read as a PDF ({_describe(error)}).") from error
    text = "\n\n".join(page.strip("\n") for page in pages if page.strip())
    if not text:
        raise UploadError(f"{upload.name} contains no text (is it a scanned image?). Paste the text instead.")
    return text


def _describe(error: Exception) -> str:
    # pdfplumber wraps pdfminer's error; the inner one says what is wrong with the file.
    inner: Any = error.args[0] if error.args and isinstance(error.args[0], Exception) else error
    return str(inner) or type(inner).__name__


register_converter(Converter(kind="pdf", label="PDF", accept=".pdf,application/pdf", to_text=pdf_to_text))
