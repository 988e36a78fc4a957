"""The child process that reads an uploaded PDF's text, under CPU-time and memory limits.

A PDF is a program for its parser: a few kilobytes of Flate-compressed stream can inflate to gigabytes, and a
content stream of millions of text operators keeps the parser busy for minutes. Page and file-size caps bound
neither, so `uploads.pdf_to_text` runs this script in a child process (`python -I pdf_reader.py ...`) with
limits the child sets on itself before it reads a byte of the file. Whatever the file does, only the child
runs out of memory or CPU time, and the web process stays small.

Run as a script; it imports only the standard library and pdfplumber (not Django, not the project). Arguments:
max pages, CPU seconds, memory bytes, max characters of text. The PDF comes on stdin; one JSON object goes to
stdout: `{"pages": [text, ...]}`, or `{"error": kind, "detail": ...}` with kind `pages` (too many), `damaged`
(the parser failed) or `expensive` (out of memory, too deep, too much text). When the CPU limit strikes, the
kernel kills the child (SIGXCPU) and nothing is written: the parent reads that from the exit status.
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    max_pages, cpu_seconds, memory_bytes, max_chars = (int(value) for value in argv)
    _limit(cpu_seconds, memory_bytes)
    data = sys.stdin.buffer.read()
    try:
        answer = read(data, max_pages=max_pages, max_chars=max_chars)
    except MemoryError:  # even building the answer can run out
        answer = {"error": "expensive", "detail": "reading it needs too much memory"}
    del data
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
