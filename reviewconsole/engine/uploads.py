"""Files a flow input accepts instead of typed text, and how each kind becomes that text.

A flow's input model opts in per field::

    raw_invoice: str = Field(json_schema_extra={"widget": "textarea", "upload": "pdf"})

The start form then offers a file field beside the text box; an uploaded file
is converted here and validated by the input model like typed text, so the
flow itself only ever sees a string. The file itself is kept with the run (see
`documents`), for the people who check what was read from it. Add a kind with
`register_converter`.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from pydantic.fields import FieldInfo

logger = logging.getLogger(__name__)

# A real invoice PDF is a few hundred kilobytes and a few pages. Size and pages
# do not bound the parser's work (a few KB can inflate to gigabytes), so the
# child process that reads it also gets CPU time, memory and wall-clock limits,
# and its text is capped; a legitimate invoice stays far below all of them.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 50
MAX_PDF_TEXT_CHARS = 500_000
PDF_CPU_SECONDS = 20
PDF_WALL_SECONDS = 30
PDF_MEMORY_BYTES = 256 * 1024 * 1024


class UploadError(ValueError):
    """An uploaded file that cannot become text; the message is shown next to the file field."""


@dataclass(frozen=True)
class Reading:
    """What an upload reads as: its text, and its number of pages when it has pages."""

    text: str
    pages: int | None = None


@dataclass(frozen=True)
class Converter:
    """One kind of upload: what the file field shows and accepts, and how a file becomes text."""

    kind: str
    label: str  # for people: "PDF"
    accept: str  # the file input's `accept` attribute, so the browser's picker offers the right files
    read: Callable[[UploadedFile], Reading]


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


def read_upload(kind: str, upload: UploadedFile) -> Reading:
    """`upload` read as `kind`; raises UploadError with a message for the person who sent it."""
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        limit = filesizeformat(MAX_UPLOAD_BYTES)
        raise UploadError(f"{upload.name} is {filesizeformat(upload.size)}; files up to {limit} are accepted.")
    return get_converter(kind).read(upload)


def convert_upload(kind: str, upload: UploadedFile) -> str:
    """The text of `upload` read as `kind` (see `read_upload`)."""
    return read_upload(kind, upload).text


def read_pdf(upload: UploadedFile) -> Reading:
    """The text of every page, pages separated by a blank line (pdfplumber's layout-free extraction).

    The parsing runs in a child process under CPU-time, memory and wall-clock limits (see `pdf_reader`): a
    decompression bomb or an operator flood costs the child its limits, and the sender a form error.
    """
    upload.seek(0)
    if not upload.read(5).startswith(b"%PDF-"):
        raise UploadError(f"{upload.name} is not a PDF. Upload a PDF, or paste the text.")
    upload.seek(0)
    answer = run_reader(upload.read(), "text", MAX_PDF_PAGES, MAX_PDF_TEXT_CHARS)
    if answer.get("error") == "pages":
        raise UploadError(f"{upload.name} has {answer['count']} pages; up to {MAX_PDF_PAGES} are read.")
    if answer.get("error") == "damaged":
        raise UploadError(f"{upload.name} could not be read as a PDF ({answer['detail']}).")
    if answer.get("error"):
        raise UploadError(f"This PDF is too large or complex to read: {answer['detail']}.")
    text = "\n\n".join(page.strip("\n") for page in answer["pages"] if page.strip())
    if not text:
        raise UploadError(f"{upload.name} contains no text (is it a scanned image?). Paste the text instead.")
    return Reading(text=text, pages=len(answer["pages"]))


def run_reader(data: bytes, mode: str, *arguments: int) -> dict[str, Any]:
    """`pdf_reader`'s answer for `data` in `mode` ("text" or "render", see there); a child killed by a limit is
    answered as too expensive."""
    limits = [PDF_CPU_SECONDS, PDF_MEMORY_BYTES, *arguments]
    # -I: the child sees neither PYTHON* variables nor the current directory, only the interpreter's packages.
    command = [sys.executable, "-I", str(Path(__file__).with_name("pdf_reader.py")), mode, *map(str, limits)]
    try:
        child = subprocess.run(command, input=data, capture_output=True, timeout=PDF_WALL_SECONDS, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return {"error": "expensive", "detail": f"reading it took longer than {PDF_WALL_SECONDS} seconds"}
    try:
        answer = json.loads(child.stdout) if child.returncode == 0 else None
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        return answer
    stderr = child.stderr.decode(errors="replace")[-2000:]
    if child.returncode == -signal.SIGXCPU:
        logger.warning("PDF reader stopped by its CPU limit")
        return {"error": "expensive", "detail": f"reading it needs more than {PDF_CPU_SECONDS} seconds of CPU time"}
    # Killed (the kernel's answer to a hard limit) or out of memory even for its answer.
    if child.returncode < 0 or "MemoryError" in stderr:
        logger.warning("PDF reader exited with %s: %s", child.returncode, stderr)
        memory = filesizeformat(PDF_MEMORY_BYTES)
        return {"error": "expensive", "detail": f"reading it needs more than {memory} of memory"}
    # The reader itself failed, not because of the file: the operator needs to know.
    logger.error("PDF reader failed with exit status %s: %s", child.returncode, stderr)
    return {"error": "damaged", "detail": f"the PDF reader stopped with exit status {child.returncode}"}


register_converter(Converter(kind="pdf", label="PDF", accept=".pdf,application/pdf", read=read_pdf))
