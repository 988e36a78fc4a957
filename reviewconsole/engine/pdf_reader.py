"""The child process that reads an uploaded PDF's text, or draws one of its pages, under CPU-time and memory limits.

A PDF is a program for its parser: a few kilobytes of Flate-compressed stream can inflate to gigabytes, and a
content stream of millions of text operators keeps the parser busy for minutes. Page and file-size caps bound
neither, so `uploads.read_pdf` and `documents.page_png` run this script in a child process
(`python -I pdf_reader.py ...`) with limits the child sets on itself before it reads a byte of the file.
Whatever the file does, only the child runs out of memory or CPU time, and the web process stays small.

Run as a script; it imports only the standard library, pdfplumber and pypdfium2 (not Django, not the project).
Arguments: the mode, CPU seconds, memory bytes, then the mode's own:
- `text MAX_PAGES MAX_CHARS`: answers `{"pages": [text, ...]}`;
- `render PAGE WIDTH` (PAGE from 1): answers `{"png": base64, "count": pages}`, the page drawn WIDTH pixels wide.
The PDF comes on stdin; one JSON object goes to stdout: the answer, or `{"error": kind, "detail": ...}` with
kind `pages` (too many, or no such page; with `count`), `damaged` (the parser failed) or `expensive` (out of
memory, too deep, too much text). When the CPU limit strikes, the
kernel kills the child (SIGXCPU) and nothing is written: the parent reads that from the exit status.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import sys
from typing import Any


def _limit(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # The parser has no reason to write files; a core dump of a killed child would be one.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def read(data: bytes, *, max_pages: int, max_chars: int) -> dict[str, Any]:
    """The answer for one PDF: its pages' text, or what stopped the reading."""
    import pdfplumber

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            if len(pdf.pages) > max_pages:
                return {"error": "pages", "count": len(pdf.pages)}
            pages, chars = [], 0
            for page in pdf.pages:
                text = page.extract_text() or ""
                chars += len(text)
                if chars > max_chars:
                    return {"error": "expensive", "detail": f"its text is longer than {max_chars:,} characters"}
                pages.append(text)
                # The page's layout objects are not needed again; keep only one page's worth in memory.
                page.close()
    except Exception as error:  # a damaged file can fail anywhere in the parser, with any error type
        # pdfplumber wraps pdfminer's error; the inner one says what went wrong.
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
        if isinstance(inner, MemoryError):
            return {"error": "expensive", "detail": "reading it needs too much memory"}
        if isinstance(inner, RecursionError):
            return {"error": "expensive", "detail": "its objects are nested too deeply"}
        return {"error": "damaged", "detail": str(inner) or type(inner).__name__}
    return {"pages": pages}


def render(data: bytes, *, page: int, width: int) -> dict[str, Any]:
    """Page `page` (from 1) drawn `width` pixels wide as a PNG, base64-encoded, with the document's page count."""
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
        count = len(pdf)
        if not 1 <= page <= count:
            return {"error": "pages", "count": count}
        drawn = pdf[page - 1]
        bitmap = drawn.render(scale=width / max(drawn.get_width(), 1.0))
        png = io.BytesIO()
        bitmap.to_pil().save(png, format="PNG", optimize=True)
    except MemoryError:
        return {"error": "expensive", "detail": "drawing it needs too much memory"}
    except Exception as error:  # pdfium reports a damaged file as a PdfiumError, and PIL its own way
        return {"error": "damaged", "detail": str(error) or type(error).__name__}
    return {"png": base64.b64encode(png.getvalue()).decode("ascii"), "count": count}


def main(argv: list[str]) -> int:
    mode, cpu_seconds, memory_bytes, first, second = argv[0], *(int(value) for value in argv[1:])
    _limit(cpu_seconds, memory_bytes)
    data = sys.stdin.buffer.read()
    try:
        if mode == "render":
            answer = render(data, page=first, width=second)
        else:
            answer = read(data, max_pages=first, max_chars=second)
    except MemoryError:  # even building the answer can run out
        answer = {"error": "expensive", "detail": "reading it needs too much memory"}
    del data
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
