"""Read a CSV file's records as rows of text, each checked against the header.

Every cell stays the text written (``001`` stays ``001``, an empty cell is ``""``, never a number or NaN). A record
with more or fewer fields than the header is an unreadable row of its own (the caller fails on it or skips it):
a parser that takes a surplus first field as the index, or fills a short record with blanks, would shift or
invent that record's values without a word. A quote the dialect cannot close makes the whole file unreadable (the
records after it cannot be told apart), named by its line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from grape.errors import InputError

if TYPE_CHECKING:
    from grape.data.read_rows import RawRow


def csv_rows(path: Path) -> Iterator[RawRow]:
    """Yield record N (1-based, the header and blank lines not counted) as row N: a dict of its cells by the
    header's column names, or no data and why where its field count is not the header's."""
    from grape.data.read_rows import RawRow

    try:
        text = path.read_bytes().decode("utf-8-sig")  # line breaks as written (read_text would turn \r\n into \n)
    except UnicodeDecodeError as exc:
        raise InputError(str(path), None, None, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x})") from exc
    except OSError as exc:
        raise InputError(str(path), None, None, f"cannot read the file ({exc.strerror})") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # line breaks as written: in cells too
    try:
        header = next((record for record in reader if record), None)
        if header is None:
            raise InputError(str(path), None, None, "empty CSV file (no header row)")
        number = 0
        for record in reader:
            if not record:
                continue
            number += 1
            if len(record) == len(header):
                yield RawRow(number, dict(zip(header, record, strict=True)))
            else:
                why = f"{len(record)} fields where the header has {len(header)} (line {reader.line_num})"
                yield RawRow(number, None, why)
    except csv.Error as exc:
        raise InputError(str(path), None, None, f"cannot read as CSV (line {reader.line_num}: {exc})") from exc
