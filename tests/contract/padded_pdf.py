"""A valid one-page PDF of any size, made in a moment: the size is an unreferenced stream of spaces.

No reader follows an object that nothing references (pypdf reads through the cross-reference table
and loads objects only when asked), so a 31 MB document costs the PDF check as little as a 1 kB one
while every byte still goes through hashing, upload and the size limits.
"""

from __future__ import annotations

import io

TEXT = b"BT /F1 12 Tf 72 760 Td (Padded contract) Tj ET BT /F1 12 Tf 72 640 Td (#SIGN1#) Tj ET"


def padded_pdf(total_bytes: int) -> bytes:
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R"
        b"/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>>>",
        b"<</Length %d>>stream\n" % len(TEXT) + TEXT + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    padding_offset = out.tell()
    head = b"%d 0 obj\n<</Length " % (len(objects) + 1)
    tail_estimate = 300  # the xref table and trailer that follow
    padding = max(0, total_bytes - padding_offset - len(head) - 40 - tail_estimate)
    out.write(head + b"%d>>stream\n" % padding)
    out.write(b" " * padding)
    out.write(b"\nendstream\nendobj\n")
    offsets.append(padding_offset)
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))
    data = out.getvalue()
    return data + b"\n" * max(0, total_bytes - len(data))  # whitespace after %%EOF is allowed
