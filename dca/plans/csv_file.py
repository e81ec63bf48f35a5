"""The embedded default plan source: a CSV file with the Google Sheet's columns.

Writes (new IDs, Log cells) are atomic (temp file, fsync, rename) and refuse to clobber
an edit made since the file was read, so a person editing the plan never loses work and
a row is never left with an ID that did not reach the disk.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Mapping

from dca.domain import PLAN_COLUMNS, ParsedPlan, canonical_header, new_row_id, parse_plan
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


def _atomic_write(path: Path, text: str, encoding: str = "utf-8") -> None:
    # Write where a symlinked plan really lives, or the rename would replace the link
    # and the person's own file would silently stop being the plan.
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
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


class CsvPlanSource:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = f"CSV file {self.path}"
        self._loaded_digest: str | None = None

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise PlanError(f"plan file {self.path} does not exist; create it or pass --plan PATH") from None
        except UnicodeDecodeError:
            raise PlanError(f"plan file {self.path} is not UTF-8 text; save it as CSV (UTF-8)") from None
        except OSError as e:
            raise PlanError(f"cannot read plan file {self.path}: {e.strerror}") from e

    @staticmethod
    def _table(text: str) -> list[list[str]]:
        return [list(line) for line in csv.reader(io.StringIO(text))]

    def load(self) -> ParsedPlan:
        text = self._read()
        self._loaded_digest = hashlib.sha256(text.encode()).hexdigest()
        return parse_plan(self._table(text))

    def assign_ids(self, ids_by_row: Mapping[int, str]) -> None:
        def put_ids(table: list[list[str]], header_index: int, column: Callable[[str], int]) -> None:
            id_col = column("ID")
            for row_number, row_id in ids_by_row.items():
                line = table[row_number - 1]
                line.extend([""] * (id_col + 1 - len(line)))
                line[id_col] = row_id

        # IDs are given by row number, so the file must be exactly what was parsed.
        self._rewrite(put_ids, expected_digest=self._loaded_digest)

    def write_logs(self, lines_by_id: Mapping[str, str]) -> set[str]:
        found: set[str] = set()

        def put_logs(table: list[list[str]], header_index: int, column: Callable[[str], int]) -> None:
            id_col, log_col = column("ID"), column("Log")
            for line in table[header_index + 1 :]:
                row_id = line[id_col].strip() if id_col < len(line) else ""
                if row_id in lines_by_id:
                    line.extend([""] * (log_col + 1 - len(line)))
                    line[log_col] = lines_by_id[row_id]
                    found.add(row_id)

        self._rewrite(put_logs, expected_digest=None)
        return found

    def _rewrite(self, change, expected_digest: str | None) -> None:
        self._check_writable()
        text = self._read()
        if expected_digest is not None and hashlib.sha256(text.encode()).hexdigest() != expected_digest:
            raise PlanError(f"plan file {self.path} changed while it was being processed; run again")
        table = self._table(text)
        header_index = next((i for i, line in enumerate(table) if any(c.strip() for c in line)), None)
        if header_index is None:
            raise PlanError(f"plan file {self.path} is empty")
        header = table[header_index]

        def column(name: str) -> int:
            for i, cell in enumerate(header):
                if canonical_header(cell) == name:
                    return i
            header.append(name)
            return len(header) - 1

        change(table, header_index, column)
        new_text = _to_csv(table)
        if self._read() != text:
            raise PlanError(f"plan file {self.path} was edited during the update; run again")
        # Keep a byte-order mark if the file had one (Excel writes it, and expects it back).
        with self.path.open("rb") as f:
            encoding = "utf-8-sig" if f.read(3) == codecs.BOM_UTF8 else "utf-8"
        try:
            _atomic_write(self.path, new_text, encoding)
        except OSError as e:
            raise PlanError(f"cannot write plan file {self.path}: {e.strerror}") from e
        self._loaded_digest = hashlib.sha256(new_text.encode()).hexdigest()

    def _check_writable(self) -> None:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise PlanError(f"plan file {self.path} has disappeared") from None
        # Root ignores permission bits, so honour the read-only flag the person set.
        if not mode & stat.S_IWUSR or not os.access(self.path, os.W_OK) or not os.access(self.path.parent, os.W_OK):
            raise PlanError(f"plan file {self.path} is read-only; make it writable so new rows can get IDs")
