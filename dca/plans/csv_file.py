"""The embedded default plan source: a CSV file with the Google Sheet's columns.

The file is the person's: it is read exactly and changed only where the system means
to. Reading uses a small reader of its own rather than the csv module, which silently
swallows the rest of the file into a cell after an unterminated quote, stops with a
traceback at cells over 128 KiB, and cannot say where in the text a cell was. Knowing
that, a write (new IDs, Log cells) replaces just the changed cells' characters in the
original text: line endings, encoding, byte-order mark, separator, the quoting of every
other cell and anything after the last row stay byte for byte.

What the reader accepts, and why (the csv module's lenient cases decided one by one):
- a quote that is never closed: the whole plan is refused, naming the line where it
  opened, since every row after it would be misread;
- text after a closing quote (`"AA"PL`): an error on that row, whose cells cannot be
  trusted; the rows below are still delimited as any spreadsheet delimits them;
- a quote inside an unquoted cell (`5" screen`): an ordinary character, as in the csv
  module and spreadsheet apps (a quote only opens a quoted cell at the cell's start);
- NUL and other control characters: ordinary characters, so a Status or Amount holding
  one is an error on its row; messages show them escaped;
- `,` is the separator, but a file whose header reads as columns only with `;` or a tab
  (as spreadsheet apps in some locales export) is read with that separator, and writes
  keep it;
- UTF-8 (with or without a byte-order mark) and UTF-16 with a byte-order mark; any
  other bytes are refused naming the line, never guessed.

Writes are atomic (temp file, fsync, rename) and refuse to clobber an edit made since
the file was read, so a person editing the plan never loses work and a row is never left
with an ID that did not reach the disk.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from dca.domain import (
    PLAN_COLUMNS,
    REQUIRED_COLUMNS,
    ParsedPlan,
    canonical_header,
    column_letter,
    new_row_id,
    parse_plan,
    quote_cell,
)
from dca.errors import PlanError

EXAMPLE_ROWS = [
    ("Active", "AAPL", "10", "Weekly"),
    ("Inactive", "TSLA", "10", "Daily"),
    ("Active", "SPY", "500", "Weekly"),
    ("Active", "VTI", "1000", "Monthly"),
]


def write_example_plan(path: Path) -> None:
    """Create the first-start example plan, with IDs, unless a plan is already there."""
    path = Path(path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    table = [list(PLAN_COLUMNS)] + [[*row, "", new_row_id()] for row in EXAMPLE_ROWS]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(_to_csv(table))
            f.flush()
            os.fsync(f.fileno())
        # link() fails if the plan appeared meanwhile: two faces starting at once must not
        # each write an example with different IDs, the second replacing the first.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def _to_csv(table: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue()


class _EditedMeanwhile(Exception):
    pass


def _atomic_write(path: Path, data: bytes, still_unchanged: Callable[[], bool] = lambda: True) -> None:
    """Replace the file with `data` (temp file, fsync, rename). `still_unchanged` is asked
    right before the rename, after the slow fsync, so an edit the person saved while the
    new text was being written is not overwritten (the write is refused instead)."""
    # Write where a symlinked plan really lives, or the rename would replace the link
    # and the person's own file would silently stop being the plan.
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        if not still_unchanged():
            raise _EditedMeanwhile()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- reading the text exactly ---------------------------------------------------------

SEPARATORS = (",", ";", "\t")
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class _Cell:
    start: int  # where the cell's text starts and ends in the file's text, quotes included
    end: int
    value: str
    quoted: bool


@dataclass(frozen=True)
class _Record:
    """One row of the table: its cells and where it ends (before its line break)."""

    cells: list[_Cell]
    end: int
    problems: list[str]


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """The file's text and the codec that gives back exactly its bytes. A byte-order
    mark stays in the text (as U+FEFF), so a write keeps it."""
    if raw.startswith(codecs.BOM_UTF16_LE) and not raw.startswith(codecs.BOM_UTF32_LE):
        codec, name = "utf-16-le", "UTF-16"
    elif raw.startswith(codecs.BOM_UTF16_BE):
        codec, name = "utf-16-be", "UTF-16"
    else:
        codec, name = "utf-8", "UTF-8"
        if raw.count(b"\x00") * 4 > len(raw):
            raise PlanError(f"plan file {path} looks like UTF-16 text without a byte-order mark, or is not "
                            "text at all; save it as CSV UTF-8")
    try:
        return raw.decode(codec), codec
    except UnicodeDecodeError as e:
        line = len(_LINE_END.findall(raw[: e.start].decode(codec, errors="replace"))) + 1
        raise PlanError(
            f"plan file {path} is not {name} text (line {line} has the byte 0x{raw[e.start]:02X}, as in a file "
            "saved as Latin-1 or Windows-1252); save it as CSV UTF-8"
        ) from None


def _line_of(text: str, position: int) -> int:
    return len(_LINE_END.findall(text, 0, position)) + 1


def _tokenize(text: str, separator: str, path: Path, header_only: bool = False) -> list[_Record]:
    """Cut the text into records and cells as RFC 4180 (and every spreadsheet) does,
    keeping each cell's place in the text. Raises PlanError for an unclosed quote.
    `header_only`: stop after the first record that is not blank."""
    unquoted = re.compile(f"[^{re.escape(separator)}\r\n]*")
    records: list[_Record] = []
    position = 1 if text.startswith("\ufeff") else 0
    length = len(text)
    while position < length:
        cells: list[_Cell] = []
        problems: list[str] = []
        while True:
            start = position
            if text.startswith('"', position):
                parts, cursor = [], position + 1
                while True:
                    quote = text.find('"', cursor)
                    if quote < 0:
                        raise PlanError(
                            f"plan file {path}: the quote that opens on line {_line_of(text, start)} (row "
                            f"{len(records) + 1}, column {column_letter(len(cells))}) is never closed, so "
                            "every line after it would be read as one cell; close or remove that quote. "
                            "Nothing is read from the plan until then"
                        )
                    parts.append(text[cursor:quote])
                    if text.startswith('"', quote + 1):  # "" is a quote inside the cell
                        parts.append('"')
                        cursor = quote + 2
                        continue
                    break
                after = unquoted.match(text, quote + 1)
                if after.group():
                    problems.append(
                        f"the cell in column {column_letter(len(cells))} has text after its closing quote "
                        f"({quote_cell(text[start:after.end()])}); quote the whole cell and double any quote in it"
                    )
                position = after.end()
                cells.append(_Cell(start, position, "".join(parts) + after.group(), not after.group()))
            else:
                match = unquoted.match(text, position)
                position = match.end()
                cells.append(_Cell(start, position, match.group(), False))
            if text.startswith(separator, position):
                position += 1
                continue
            break
        records.append(_Record(cells, position, problems))
        position += 2 if text.startswith("\r\n", position) else 1
        if header_only and any(c.value.replace("\u00a0", " ").strip() for c in cells):
            break
    return records


def _detect_separator(text: str, path: Path) -> str:
    """The separator with which the header (the first non-blank record) names the most
    known columns; a comma unless another does better."""

    def known(separator: str) -> int:
        try:
            records = _tokenize(text, separator, path, header_only=True)
        except PlanError:  # an unclosed quote: reported once the separator is chosen
            return 0
        return len({canonical_header(c.value) for c in records[-1].cells} - {None}) if records else 0

    return max(SEPARATORS, key=known)  # max() keeps the first of equals: the comma


@dataclass(frozen=True)
class _Document:
    """A plan file as read: its exact text, how to encode it back, and its records."""

    text: str
    codec: str
    separator: str
    records: list[_Record]

    @classmethod
    def read(cls, raw: bytes, path: Path) -> _Document:
        text, codec = _decode(raw, path)
        separator = _detect_separator(text, path)
        return cls(text, codec, separator, _tokenize(text, separator, path))

    def parse(self) -> ParsedPlan:
        table = [[c.value for c in r.cells] for r in self.records]
        problems = {i: r.problems for i, r in enumerate(self.records) if r.problems}
        try:
            return parse_plan(table, problems)
        except PlanError as error:
            if self.separator != ",":
                raise PlanError(f"{error} (the file was read as {_SEPARATOR_NAMES[self.separator]}-separated)") from None
            if _looks_separated_by_other_than_comma(table):
                raise PlanError(f"{error}. This looks like a file separated by semicolons or tabs; export the "
                                "plan as comma-separated CSV") from None
            raise

    def header_index(self) -> int:
        return next(i for i, r in enumerate(self.records) if any(c.value.strip() for c in r.cells))

    def encode_cell(self, value: str, was_quoted: bool) -> str:
        if was_quoted or any(ch in value for ch in (self.separator, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    def with_cells(self, changes: Mapping[int, Mapping[int, str]]) -> bytes:
        """The file's bytes with the given cells (record index -> column -> value) set,
        every other character as it was."""
        edits: list[tuple[int, int, str]] = []
        for index, values in changes.items():
            record = self.records[index]
            last = len(record.cells) - 1
            tail = ""
            for column, value in sorted(values.items()):
                if column <= last:
                    cell = record.cells[column]
                    if cell.value != value:
                        edits.append((cell.start, cell.end, self.encode_cell(value, cell.quoted)))
                else:
                    tail += self.separator * (column - last) + self.encode_cell(value, False)
                    last = column
            if tail:
                edits.append((record.end, record.end, tail))
        pieces, done = [], 0
        for start, end, new in sorted(edits):
            pieces += [self.text[done:start], new]
            done = end
        pieces.append(self.text[done:])
        return "".join(pieces).encode(self.codec)


def _looks_separated_by_other_than_comma(table: list[list[str]]) -> bool:
    header = next((line for line in table if any(c.strip() for c in line)), [])
    joined = ",".join(header)
    return any(sep in joined for sep in (";", "\t")) and not all(
        any(canonical_header(c) == name for c in header) for name in REQUIRED_COLUMNS
    )


class PlanConflict(PlanError):
    """The plan file changed since the panel loaded it, where the person edited: nothing
    was written; reload and make the change again."""


def _clean_cell(value: object) -> str:
    return str(value).replace("\u00a0", " ").strip()


class CsvPlanSource:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"CSV file {self.path}"

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise PlanError(f"plan file {self.path} does not exist; create it or pass --plan PATH") from None
        except OSError as e:
            raise PlanError(f"cannot read plan file {self.path}: {e.strerror}") from e

    def load(self) -> ParsedPlan:
        raw = self._read()
        plan = _Document.read(raw, self.path).parse()
        plan.version = hashlib.sha256(raw).hexdigest()  # the exact bytes the row numbers refer to
        return plan

    def assign_ids(self, ids_by_row: Mapping[int, str], version: str | None) -> ParsedPlan:
        def put_ids(document: _Document, column) -> dict[int, dict[int, str]]:
            id_col = column("ID")
            return {row_number - 1: {id_col: row_id} for row_number, row_id in ids_by_row.items()}

        # IDs are given by row number, so the file must be exactly what was parsed.
        if version is None:
            raise PlanError(f"plan file {self.path}: new IDs need the version of the plan they were made for")
        self._rewrite(put_ids, expected_digest=version)
        return self.load()

    def write_logs(self, lines_by_id: Mapping[str, str], history=(), maybe_written: bool = False) -> set[str]:
        # A CSV plan keeps no History: the ledger (`dca history`) is its history.
        found: set[str] = set()

        def put_logs(document: _Document, column) -> dict[int, dict[int, str]]:
            id_col = column("ID", add=False)
            if id_col is None:
                return {}
            log_col = None
            changes: dict[int, dict[int, str]] = {}
            for index in range(document.header_index() + 1, len(document.records)):
                cells = document.records[index].cells
                row_id = cells[id_col].value.replace("\u00a0", " ").strip() if id_col < len(cells) else ""
                if row_id in lines_by_id:
                    log_col = column("Log") if log_col is None else log_col
                    changes[index] = {log_col: lines_by_id[row_id]}
                    found.add(row_id)
            return changes

        self._rewrite(put_logs, expected_digest=None)
        return found

    def cells(self) -> list[dict[str, str]]:
        """Every non-blank row below the header, as its cells read (by plan column, plus
        "Row", the line number as the person sees it): what the panel's editor shows, bad
        cells included, so a person can mend them."""
        document = _Document.read(self._read(), self.path)
        document.parse()
        header_index = document.header_index()
        columns = {canonical_header(c.value): i for i, c in enumerate(document.records[header_index].cells)}
        rows = []
        for index in range(header_index + 1, len(document.records)):
            cells = document.records[index].cells
            values = {name: (cells[columns[name]].value if name in columns and columns[name] < len(cells) else "")
                      for name in PLAN_COLUMNS}
            if any(_clean_cell(values[n]) for n in PLAN_COLUMNS):
                rows.append({"Row": str(index + 1), **values})
        return rows

    def write_cells(self, edits: Mapping[tuple[str, str], tuple[str, str]]) -> int:
        """Write what the person changed in the panel, as the sheet's `write_cells` does:
        (row ID, column) -> (value as loaded, new value). Only those cells are written, each
        found by its row's ID now; if any of them changed in the file since it was loaded,
        nothing is written and PlanConflict says which (reload, then edit again). Returns
        the number of cells written."""
        written = 0

        def put_cells(document: _Document, column) -> dict[int, dict[int, str]]:
            nonlocal written
            rows_by_id = self._rows_by_id(document, column)
            conflicts, changes = [], {}
            for (row_id, name), (loaded, new) in edits.items():
                name = canonical_header(name) or name
                index = rows_by_id.get(row_id)
                if index is None or name not in PLAN_COLUMNS or name == "ID":
                    conflicts.append(f"row {row_id} or its {name} column is no longer in the file")
                    continue
                col = column(name)
                cells = document.records[index].cells
                now = cells[col].value if col < len(cells) else ""
                if _clean_cell(now) != _clean_cell(loaded):
                    conflicts.append(f"{name} of row {index + 1} is now {quote_cell(now)}, not {quote_cell(loaded)}")
                    continue
                if now != new:
                    changes.setdefault(index, {})[col] = str(new)
                    written += 1
            if conflicts:
                raise PlanConflict(f"plan file {self.path} changed since it was loaded, so nothing was written: "
                                   + "; ".join(conflicts) + ". Reload and make the change again")
            return changes

        self._rewrite(put_cells, expected_digest=None)
        return written

    @staticmethod
    def _rows_by_id(document: _Document, column) -> dict[str, int]:
        id_col = column("ID", add=False)
        rows: dict[str, int] = {}
        if id_col is not None:
            for index in range(document.header_index() + 1, len(document.records)):
                cells = document.records[index].cells
                if id_col < len(cells) and _clean_cell(cells[id_col].value):
                    rows.setdefault(_clean_cell(cells[id_col].value), index)
        return rows

    def add_rows(self, rows: list[Mapping[str, str]]) -> int:
        """Append rows (plan column -> value) after the last row; they get their IDs at the
        next run, as any row typed into the file does. Returns the number added."""
        rows = [r for r in rows if any(_clean_cell(r.get(n, "")) for n in REQUIRED_COLUMNS)]
        if not rows:
            return 0

        def append(document: _Document, column) -> bytes:
            header = [c.value for c in document.records[document.header_index()].cells]
            positions = {canonical_header(c): i for i, c in enumerate(header)}
            width = len(header)
            text = document.text
            found = _LINE_END.search(text)
            newline = found.group() if found else "\n"
            lines = []
            for row in rows:
                cells = [""] * width
                for name, value in row.items():
                    if name in positions and name != "ID":
                        cells[positions[name]] = document.encode_cell(str(value), False)
                lines.append(document.separator.join(cells))
            body = text.rstrip("\r\n")
            trailing = text[len(body):]
            return (body + newline + newline.join(lines) + (trailing or newline)).encode(document.codec)

        self._replace(append)
        return len(rows)

    def delete_rows(self, loaded: Mapping[str, Mapping[str, str]]) -> int:
        """Remove whole rows, found by ID: row ID -> its cells as loaded (plan column ->
        value). A row whose cells changed since, or that is gone, is a PlanConflict and
        nothing is removed. The ledger keeps a deleted row's history."""

        def remove(document: _Document, column) -> bytes:
            rows_by_id = self._rows_by_id(document, column)
            conflicts, spans = [], []
            for row_id, cells_loaded in loaded.items():
                index = rows_by_id.get(row_id)
                if index is None:
                    conflicts.append(f"row {row_id} is no longer in the file")
                    continue
                record = document.records[index]
                for name, value in cells_loaded.items():
                    col = column(name, add=False) if name in PLAN_COLUMNS else None
                    now = record.cells[col].value if col is not None and col < len(record.cells) else ""
                    if col is not None and _clean_cell(now) != _clean_cell(value):
                        conflicts.append(f"{name} of row {index + 1} is now {quote_cell(now)}, not {quote_cell(value)}")
                start = record.cells[0].start if record.cells else record.end
                end = record.end
                match = _LINE_END.match(document.text, end)
                spans.append((start, match.end() if match else end))
            if conflicts:
                raise PlanConflict(f"plan file {self.path} changed since it was loaded, so nothing was deleted: "
                                   + "; ".join(conflicts) + ". Reload and delete again")
            pieces, done = [], 0
            for start, end in sorted(spans):
                pieces += [document.text[done:start]]
                done = end
            pieces.append(document.text[done:])
            return "".join(pieces).encode(document.codec)

        self._replace(remove)
        return len(loaded)

    def _replace(self, make) -> None:
        """Write the bytes `make(document, column)` returns, refusing if the file changed
        meanwhile (as `_rewrite`, for edits that are not cell by cell)."""
        self._check_writable()
        raw = self._read()
        document = _Document.read(raw, self.path)
        document.parse()
        header = [c.value for c in document.records[document.header_index()].cells]

        def column(name: str, add: bool = True) -> int | None:
            return next((i for i, c in enumerate(header) if canonical_header(c) == name), None)

        new_raw = make(document, column)
        if new_raw == raw:
            return
        try:
            _atomic_write(self.path, new_raw, still_unchanged=lambda: self._read() == raw)
        except _EditedMeanwhile:
            raise PlanConflict(f"plan file {self.path} was edited during the update; reload and try again") from None
        except OSError as e:
            raise PlanError(f"cannot write plan file {self.path}: {e.strerror}") from e

    def _rewrite(self, change, expected_digest: str | None) -> None:
        self._check_writable()
        raw = self._read()
        if expected_digest is not None and hashlib.sha256(raw).hexdigest() != expected_digest:
            raise PlanError(f"plan file {self.path} changed while it was being processed; run again")
        document = _Document.read(raw, self.path)
        document.parse()  # never write into a file that would not be read as a plan
        header_index = document.header_index()
        header = [c.value for c in document.records[header_index].cells]
        changes: dict[int, dict[int, str]] = {}

        def column(name: str, add: bool = True) -> int | None:
            for i, cell in enumerate(header):
                if canonical_header(cell) == name:
                    return i
            if not add:
                return None
            header.append(name)
            changes.setdefault(header_index, {})[len(header) - 1] = name
            return len(header) - 1

        for index, values in change(document, column).items():
            changes.setdefault(index, {}).update(values)
        if not changes:
            return
        new_raw = document.with_cells(changes)
        if new_raw == raw:
            return
        try:
            _atomic_write(self.path, new_raw, still_unchanged=lambda: self._read() == raw)
        except _EditedMeanwhile:
            raise PlanError(f"plan file {self.path} was edited during the update; run again") from None
        except OSError as e:
            raise PlanError(f"cannot write plan file {self.path}: {e.strerror}") from e

    def _check_writable(self) -> None:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise PlanError(f"plan file {self.path} has disappeared") from None
        # Root ignores permission bits, so honour the read-only flag the person set.
        if not mode & stat.S_IWUSR or not os.access(self.path, os.W_OK) or not os.access(self.path.parent, os.W_OK):
            raise PlanError(f"plan file {self.path} is read-only; make it writable so new rows can get IDs")
