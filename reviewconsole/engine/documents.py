"""The original files runs were started from: kept in the "documents" storage, shown as page images.

A run input read from an uploaded file (see `uploads`) keeps that file beside the run, so a reviewer can check
the reading against the document itself. Pages are drawn on the server, in the limited child process that
reads PDFs (`pdf_reader`), at one width, and each drawing is kept in the same storage: a page is drawn once,
whichever web process is asked first, and no PDF viewer or script reaches the browser.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile

from reviewconsole.engine.models import FlowRun, RunDocument, documents_storage
from reviewconsole.engine.uploads import run_reader

# Wide enough for a reader to make out an invoice's small print in a column about half the screen wide, and
# sharp on a 2x screen at that size; a page of A4 is then about 120 KB of PNG.
PAGE_WIDTH_PX = 1000


class DocumentPageError(LookupError):
    """A page that cannot be shown: none by that number, or a file that can no longer be drawn."""


def document_store(*, run: FlowRun, input_name: str, upload: UploadedFile, pages: int) -> RunDocument:
    """Keep `upload`, from which `input_name` of `run` was read, in the documents storage.

    Side effects: the file is written to the storage (under a fresh name: two uploads never collide), and a
    RunDocument row. Call inside the run's creating transaction; a rollback then leaves the file without a row.
    """
    upload.seek(0)
    data = upload.read()
    document = RunDocument(
        run=run,
        input_name=input_name,
        original_name=(upload.name or "document")[:255],
        content_type=upload.content_type or "application/octet-stream",
        size=len(data),
        pages=pages,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    document.file.save(upload.name or "document", ContentFile(data), save=False)
    document.save()
    return document


def _renders_dir(document_id: Any) -> str:
    return f"renders/{document_id}"


def _render_name(document: RunDocument, page: int) -> str:
    return f"{_renders_dir(document.id)}/page-{page}-w{PAGE_WIDTH_PX}.png"


def documents_files_delete(files: list[tuple[Any, str]]) -> None:
    """Delete from the storage the files of deleted documents, given as (document id, file name), and every
    page image drawn of them."""
    storage = documents_storage()
    for document_id, name in files:
        storage.delete(name)
        try:
            _, drawn = storage.listdir(_renders_dir(document_id))
        except FileNotFoundError:
            continue
        for render in drawn:
            storage.delete(f"{_renders_dir(document_id)}/{render}")


def page_etag(document: RunDocument, page: int) -> str:
    """An ETag for a page's image: the same file, page and width always draw the same image."""
    return f'"{document.sha256[:20]}-{page}-{PAGE_WIDTH_PX}"'


def page_png(document: RunDocument, page: int) -> bytes:
    """Page `page` (from 1) of `document` as a PNG `PAGE_WIDTH_PX` wide: drawn once, then read from the storage.

    Raises DocumentPageError for a page the document does not have, or one that cannot be drawn.
    """
    if not 1 <= page <= document.pages:
        raise DocumentPageError(f"{document.original_name} has {document.pages} pages, not page {page}.")
    storage = documents_storage()
    name = _render_name(document, page)
    if storage.exists(name):
        with storage.open(name, "rb") as cached:
            return cached.read()
    with document.file.open("rb") as original:
        answer: dict[str, Any] = run_reader(original.read(), "render", page, PAGE_WIDTH_PX)
    if "png" not in answer:
        why = answer.get("detail", answer.get("error"))
        raise DocumentPageError(f"Page {page} of {document.original_name} cannot be drawn: {why}.")
    png = base64.b64decode(answer["png"])
    # Two web processes may draw the same page at once; the storage then keeps both under different names, and
    # every later request reads the first.
    storage.save(name, ContentFile(png))
    return png
