"""A minimal PDF writer for text: the demo's uploaded invoice and the tests' files, without a PDF library.

Each page is lines of Helvetica on US Letter; nothing else a PDF can hold. `assemble_pdf` takes raw content
streams, so a test can also write the files a parser must survive (compressed bombs, operator floods).
"""

from __future__ import annotations


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def text_pdf(*pages: list[str], size: int = 12) -> bytes:
    """A PDF with one page per list, one text line per entry (Latin-1 text), `size`-point Helvetica."""
    contents = []
    for lines in pages:
        shown = " T* ".join(f"{_pdf_string(line)} Tj" for line in lines)
        leading = round(size * 4 / 3)
        contents.append((f"BT /F1 {size} Tf {leading} TL 72 720 Td {shown} ET" if lines else "").encode("latin-1"))
    return assemble_pdf(contents)


def assemble_pdf(contents: list[bytes], filters: str = "") -> bytes:
    """A PDF with one page per content stream, each stored with `filters` (e.g. `/FlateDecode`)."""
    page_ids = [4 + 2 * index for index in range(len(contents))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{pid} 0 R' for pid in page_ids)}] /Count {len(contents)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, stream in zip(page_ids, contents, strict=True):
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        filter_entry = f" /Filter {filters}".encode() if filters else b""
        objects[page_id + 1] = b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(stream), filter_entry, stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number in sorted(objects):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
