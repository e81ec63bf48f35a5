"""The Google Sheet as the plan source, through gspread's HTTP client and google-auth.

The sheet is the person's, and they may be editing it at 9:00, so the source reads the
whole plan in one request and writes only the cells it means to: Log cells and new IDs
by `updateCells`, the History by `appendCells`, all in one `batchUpdate`, which Sheets
applies entirely or not at all. Rows are found by ID at the time of writing (the ID
column is read again just before), never by the position they had when the run began.

Requests per run, counted without faults: the read, the re-read before writing, the
write (3, whatever the number of rows); storing IDs for new rows adds the store and the
re-read that confirms each ID landed on the row it was made for (IDs are written by
position, and a row inserted in between must not get another row's ID). gspread's
`Spreadsheet`/`Worksheet` objects fetch metadata again and again, so the raw v4 methods
(`getByDataFilter`, `batchUpdate`) go through gspread's HTTP client instead.

Faults: reads are retried after 429, 5xx and network errors with exponential back-off
and jitter, within a bounded time (Retry-After honoured up to the bound). A write is
retried only after a 429, the one answer that says it was not applied; after a 5xx or a
timeout it may have been, so the error goes to the outbox and the next attempt first
reads which History lines (keyed by row ID, scheduled date and status) are already
there. Log cells are simply written again: the same text twice is still one line.

gspread has no base-URL setting (its URLs are copied at import), so a small HTTPClient
subclass rewrites the host for an emulator; the token endpoint comes from the
credentials file's own `token_uri`. gspread's BackOffHTTPClient retries forever and
ignores Retry-After, and gspread sets no timeout: both are handled here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from dca.domain import (
    PLAN_COLUMNS,
    REQUIRED_COLUMNS,
    ParsedPlan,
    RowIssue,
    canonical_header,
    column_letter,
    parse_plan,
)
from dca.errors import PlanError
from dca.ports import Clock, HistoryEntry

logger = logging.getLogger(__name__)

SHEETS_API_URL = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
HISTORY_TITLE = "History"
HISTORY_COLUMNS = ("Time", "Row ID", "Symbol", "Amount (USD)", "Quantity", "Price", "Status", "Order Ref",
                   "Message", "Key")
KEY_COLUMN = HISTORY_COLUMNS.index("Key")
# The sheetId a History worksheet gets when dca creates it (any unused number will do;
# a fixed one lets a run find it without first listing the worksheets).
HISTORY_SHEET_ID = 7_000_001


class SheetError(PlanError):
    """The Google Sheet cannot be read or written; the message says what to do."""

    def __init__(self, message: str, *, maybe_applied: bool = False):
        super().__init__(message)
        self.maybe_applied = maybe_applied  # a write that got no clear answer


class SheetConflict(SheetError):
    """A cell the person changed in the panel was changed in the sheet since it was loaded."""


# -- where the sheet is --------------------------------------------------------------------

_URL = re.compile(r"^https?://docs\.google\.com/spreadsheets/(?:u/\d+/)?d/(?P<id>[A-Za-z0-9_-]{10,})(?P<rest>[/?#].*)?$")
_GID = re.compile(r"[#?&]gid=(?P<gid>\d+)")
_BARE_ID = re.compile(r"^[A-Za-z0-9_-]{20,}$")


def looks_like_url(text: object) -> bool:
    return isinstance(text, str) and bool(re.match(r"^\s*https?://", text, re.IGNORECASE))


@dataclass(frozen=True)
class SheetRef:
    spreadsheet_id: str
    gid: int | None = None
    worksheet: str | None = None  # a title; None with no gid: the first worksheet

    @property
    def url(self) -> str:
        return f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit" + (
            f"#gid={self.gid}" if self.gid is not None else "")

    def describe(self) -> str:
        where = f"worksheet '{self.worksheet}'" if self.worksheet else (
            f"worksheet gid {self.gid}" if self.gid is not None else "first worksheet")
        return f"Google Sheet {self.spreadsheet_id} ({where})"


def parse_sheet_url(text: str) -> SheetRef:
    """A Google Sheet's address as the browser shows it -> SheetRef; ValueError if not one."""
    m = _URL.match(text.strip())
    if m is None:
        raise ValueError(f"'{text[:80]}' is not a Google Sheet address like "
                         "https://docs.google.com/spreadsheets/d/<id>/edit#gid=0")
    gid = _GID.search(m["rest"] or "")
    return SheetRef(m["id"], int(gid["gid"]) if gid else None)


def parse_sheet_id(text: str) -> str:
    text = text.strip()
    if not _BARE_ID.match(text):
        raise ValueError(f"'{text[:80]}' is not a spreadsheet id (the long part between /d/ and /edit in its address)")
    return text


# -- talking to the API --------------------------------------------------------------------


def load_credentials(path: Path):
    """google-auth credentials from a service-account key file (or an authorized-user file
    as gspread's desktop OAuth flow saves it). Never logs or shows the file's content."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetError(f"the Google credentials file {path} does not exist; set GOOGLE_APPLICATION_CREDENTIALS "
                         "to the service-account key file (JSON) you downloaded") from None
    except (OSError, ValueError) as e:
        raise SheetError(f"the Google credentials file {path} cannot be read as JSON "
                         f"({type(e).__name__}); download the service-account key again") from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        if kind == "authorized_user":
            return user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as e:
        raise SheetError(f"the Google credentials file {path} is incomplete ({type(e).__name__}: a field is "
                         "missing or malformed); download the service-account key again") from None
    raise SheetError(f"the Google credentials file {path} is neither a service-account key nor an authorized-user "
                     "file (its \"type\" is not service_account or authorized_user)")


def _redirecting_client(base_url: str):
    from gspread.http_client import HTTPClient

    class RedirectingHTTPClient(HTTPClient):
        """gspread's plain client (no endless back-off) with the API's host replaced."""

        def request(self, method, endpoint, *args, **kwargs):
            endpoint = endpoint.replace(SHEETS_API_URL, base_url.rstrip("/"), 1)
            return super().request(method, endpoint, *args, **kwargs)

    return RedirectingHTTPClient


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_wait: float = 1.0
    max_wait: float = 16.0  # per wait, including a Retry-After
    total_wait: float = 45.0  # over one call
    timeout: float = 30.0  # per request


class SheetsApi:
    """The raw v4 calls the source makes, with bounded retries and translated errors."""

    def __init__(self, credentials, spreadsheet_id: str, base_url: str = SHEETS_API_URL,
                 clock: Clock | None = None, policy: RetryPolicy = RetryPolicy(),
                 rng: random.Random | None = None, account: str = ""):
        import gspread

        from dca.clock import SystemClock

        self.client = gspread.Client(credentials, http_client=_redirecting_client(base_url))
        self.client.set_timeout(policy.timeout)
        self.spreadsheet_id = spreadsheet_id
        self.clock = clock or SystemClock()
        self.policy = policy
        self.rng = rng or random.Random()
        self.account = account or getattr(credentials, "service_account_email", "") or "the account in the credentials"
        self.requests = 0  # sent, retries included

    def get_by_data_filter(self, filters: list[dict]) -> dict:
        return self._call("post", f"/v4/spreadsheets/{self.spreadsheet_id}:getByDataFilter", write=False,
                          json={"dataFilters": filters, "includeGridData": True})

    def metadata(self) -> dict:
        return self._call("get", f"/v4/spreadsheets/{self.spreadsheet_id}", write=False,
                          params={"includeGridData": "false"})

    def batch_update(self, requests: list[dict]) -> dict:
        return self._call("post", f"/v4/spreadsheets/{self.spreadsheet_id}:batchUpdate", write=True,
                          json={"requests": requests})

    def _call(self, method: str, path: str, write: bool, **kwargs) -> dict:
        import requests
        from google.auth import exceptions as auth_errors
        from gspread.exceptions import APIError

        waited = 0.0
        for attempt in range(1, self.policy.attempts + 1):
            retry_after = None
            self.requests += 1
            try:
                response = self.client.http_client.request(method, SHEETS_API_URL + path, **kwargs)
                return response.json() if response.content else {}
            except APIError as e:
                status = e.response.status_code
                message = str(e.error.get("message", ""))[:300]
                if status == 429:
                    problem = "Google Sheets is rate-limiting requests (429)"
                    retry_after = _retry_after(e.response)
                elif status >= 500 and not write:
                    problem = f"Google Sheets had an error ({status})"
                elif status >= 500:
                    raise SheetError(f"Google Sheets answered a write with an error ({status}: {message}); it may "
                                     "or may not have been applied, so it is checked and retried at the next run",
                                     maybe_applied=True) from None
                else:
                    raise self._refusal(status, message, write) from None
            except (requests.ConnectionError, requests.Timeout, auth_errors.TransportError) as e:
                sent = not isinstance(e, requests.ConnectTimeout) and not _refused(e)
                if write and sent:
                    raise SheetError(f"no answer from Google Sheets to a write ({type(e).__name__}); it may or may "
                                     "not have been applied, so it is checked and retried at the next run",
                                     maybe_applied=True) from None
                problem = f"Google Sheets could not be reached ({type(e).__name__})"
            except auth_errors.RefreshError as e:
                raise SheetError(f"Google refused the credentials of {self.account} ({_auth_reason(e)}); check "
                                 "that the key file is current (a deleted key stops working) and that the Google "
                                 "Sheets API is enabled for its project") from None
            if attempt == self.policy.attempts:
                break
            wait = self._wait(attempt, retry_after)
            if waited + wait > self.policy.total_wait:
                break
            logger.info("%s; retrying in %.1f s", problem, wait)
            self.clock.sleep(wait)
            waited += wait
        raise SheetError(f"{problem}; gave up after {attempt} attempt(s) and {waited:.0f} s" +
                         ("; nothing was written" if write else "; try again later"))

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.policy.max_wait)
        base = min(self.policy.first_wait * 2 ** (attempt - 1), self.policy.max_wait)
        return base * (0.5 + self.rng.random() / 2)  # jitter, so several clients do not retry in step

    def _refusal(self, status: int, message: str, write: bool) -> SheetError:
        sid = self.spreadsheet_id
        if status == 403:
            return SheetError(f"{self.account} may not {'edit' if write else 'open'} spreadsheet {sid}: share the "
                              f"sheet with {self.account} as Editor (Share, top right in Google Sheets); if it is "
                              "shared, enable the Google Sheets API for the service account's project")
        if status == 404:
            return SheetError(f"no spreadsheet with id {sid}: check the address in DCA_PLAN (or DCA_SHEET_ID); "
                              f"if it is right, share the sheet with {self.account}")
        if status == 401:
            return SheetError(f"Google did not accept the credentials of {self.account} (401); download a new key")
        return SheetError(f"Google Sheets refused the request ({status}: {message})")


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _refused(error: Exception) -> bool:
    """A connection that was never made (refused, no route): nothing was sent."""
    text = str(error)
    return "Connection refused" in text or "NewConnectionError" in text or "Max retries exceeded" in text and \
        "Read timed out" not in text


def _auth_reason(error: Exception) -> str:
    text = str(error.args[0]) if error.args else type(error).__name__
    return text.split(":")[0][:80] if text else type(error).__name__


# -- the table as read ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    sheet_id: int
    title: str
    rows: list[list[str]]
    row_count: int
    column_count: int

    @property
    def version(self) -> str:
        data = json.dumps([self.sheet_id, self.rows], ensure_ascii=False).encode()
        return hashlib.sha256(data).hexdigest()

    def header(self) -> tuple[int, dict[str, int]]:
        index = next((i for i, r in enumerate(self.rows) if any(_clean(c) for c in r)), 0)
        columns: dict[str, int] = {}
        for position, cell in enumerate(self.rows[index] if self.rows else []):
            name = canonical_header(cell)
            if name is not None and name not in columns:
                columns[name] = position
        return index, columns

    def cell(self, index: int, column: int) -> str:
        row = self.rows[index] if index < len(self.rows) else []
        return row[column] if column < len(row) else ""

    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


def _clean(cell: object) -> str:
    return str(cell or "").replace("\u00a0", " ").strip()


def _rows_of(data: list[dict]) -> list[list[str]]:
    rows: list[list[str]] = []
    for block in data:
        for offset, row in enumerate(block.get("rowData") or []):
            index = block.get("startRow", 0) + offset
            while len(rows) <= index:
                rows.append([])
            values = [v.get("formattedValue", "") for v in (row.get("values") or [])]
            rows[index] = [""] * block.get("startColumn", 0) + values
    return rows


def _fingerprint(table: _Table, index: int, columns: Mapping[str, int]) -> tuple:
    return tuple(_clean(table.cell(index, columns[c])) if c in columns else "" for c in REQUIRED_COLUMNS)


def _cell_request(sheet_id: int, row: int, column: int, value: str, number: bool = False) -> dict:
    """One cell, written as text (so a Log line starting with `=` is never a formula), or
    as a number when `number` and the value is one (an amount edited in the panel keeps
    the column's number format)."""
    entered: dict[str, Any] = {"stringValue": value}
    if number and re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", value):
        entered = {"numberValue": float(value)}
    return {"updateCells": {"start": {"sheetId": sheet_id, "rowIndex": row, "columnIndex": column},
                            "rows": [{"values": [{"userEnteredValue": entered}]}],
                            "fields": "userEnteredValue"}}


def _grow(table: _Table, needed_columns: int) -> list[dict]:
    if needed_columns <= table.column_count:
        return []
    return [{"appendDimension": {"sheetId": table.sheet_id, "dimension": "COLUMNS",
                                 "length": needed_columns - table.column_count}}]


def _string_row(values: Sequence[str]) -> dict:
    return {"values": [{"userEnteredValue": {"stringValue": str(v)}} for v in values]}


class Memory(Protocol):
    """Where the source keeps what must outlive the process (the ledger)."""

    def remember(self, source: str, key: str, value: str) -> None: ...

    def recall(self, source: str, key: str) -> tuple[str, str] | None: ...


class _DictMemory:
    def __init__(self):
        self.values: dict[tuple[str, str], tuple[str, str]] = {}

    def remember(self, source: str, key: str, value: str) -> None:
        self.values[(source, key)] = (value, datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def recall(self, source: str, key: str) -> tuple[str, str] | None:
        return self.values.get((source, key))


# -- the plan source -----------------------------------------------------------------------


class SheetPlanSource:
    def __init__(self, ref: SheetRef, api: SheetsApi, memory: Memory | None = None):
        self.ref = ref
        self.api = api
        self.memory: Memory = memory or _DictMemory()
        self.description = ref.describe()
        self._tables: dict[str, _Table] = {}  # by version: what IDs given by row number refer to
        self._sheet_id: int | None = ref.gid

    def use_memory(self, memory: Memory) -> None:
        self.memory = memory

    # -- reading -------------------------------------------------------------------------

    def _plan_filter(self) -> dict:
        if self._sheet_id is not None:
            return {"gridRange": {"sheetId": self._sheet_id}}
        if self.ref.worksheet:
            return {"a1Range": "'" + self.ref.worksheet.replace("'", "''") + "'"}
        return {"a1Range": "A:ZZZ"}  # no sheet named: the first worksheet

    def _read(self, extra: Sequence[dict] = ()) -> tuple[_Table, dict[int, dict]]:
        """The plan worksheet (and whatever `extra` filters match), in one request."""
        try:
            answer = self.api.get_by_data_filter([self._plan_filter(), *extra])
        except SheetError as e:
            if self.ref.worksheet and "Unable to parse range" in str(e):
                raise SheetError(f"spreadsheet {self.ref.spreadsheet_id} has no worksheet named "
                                 f"'{self.ref.worksheet}'{self._worksheet_names()}; check DCA_SHEET_WORKSHEET") from None
            raise
        sheets = {s["properties"]["sheetId"]: s for s in answer.get("sheets", [])}
        plan_sheet = None
        if self._sheet_id is not None:
            plan_sheet = sheets.get(self._sheet_id)
        elif self.ref.worksheet:
            plan_sheet = next((s for s in sheets.values() if s["properties"]["title"] == self.ref.worksheet), None)
        else:
            plan_sheet = next((s for s in sorted(sheets.values(), key=lambda s: s["properties"]["index"])
                               if s["properties"]["index"] == 0), None)
        if plan_sheet is None:
            raise SheetError(f"spreadsheet {self.ref.spreadsheet_id} has no worksheet with gid {self._sheet_id}"
                             f"{self._worksheet_names()}; check the #gid= part of the address in DCA_PLAN")
        props = plan_sheet["properties"]
        self._sheet_id = props["sheetId"]
        grid = props.get("gridProperties", {})
        # The plan's own block is the first one: getByDataFilter answers in filter order.
        table = _Table(props["sheetId"], props["title"], _rows_of(plan_sheet.get("data", [])[:1]),
                       grid.get("rowCount", 1000), grid.get("columnCount", 26))
        return table, sheets

    def _worksheet_names(self) -> str:
        try:
            titles = [s["properties"]["title"] for s in self.api.metadata().get("sheets", [])]
        except SheetError:
            return ""
        return f" (it has: {', '.join(titles)})" if titles else ""

    def _parse(self, table: _Table) -> ParsedPlan:
        try:
            plan = parse_plan(table.rows)  # the CSV source's parsing, cell for cell
        except PlanError as e:
            raise SheetError(f"worksheet '{table.title}' of {self.description}: {e}") from None
        plan.version = table.version
        self._tables[table.version] = table
        while len(self._tables) > 4:  # a run needs the latest; the panel may hold an older one
            del self._tables[next(iter(self._tables))]
        return plan

    def load(self) -> ParsedPlan:
        table, _ = self._read()
        plan = self._parse(table)
        self._keep(table)
        return plan

    def _keep(self, table: _Table) -> None:
        """The last plan read, so the panel can show it while the sheet is unreachable."""
        try:
            self.memory.remember(self.ref.spreadsheet_id, "last_plan",
                                 json.dumps({"title": table.title, "rows": table.rows}, ensure_ascii=False))
        except Exception as e:  # a read-only ledger must not make the plan unreadable
            logger.warning("could not keep a copy of the plan read from the sheet: %s", e)

    def kept_plan(self) -> tuple[ParsedPlan, str] | None:
        """The last plan read successfully and when (UTC), or None: for showing read-only."""
        kept = self.memory.recall(self.ref.spreadsheet_id, "last_plan")
        if kept is None:
            return None
        value, at = kept
        rows = json.loads(value)["rows"]
        return parse_plan(rows), at

    # -- storing new IDs -------------------------------------------------------------------

    def assign_ids(self, ids_by_row: Mapping[int, str], version: str | None) -> ParsedPlan:
        table = self._tables.get(version or "")
        if table is None:
            raise SheetError(f"{self.description}: new IDs were made for a version of the plan this source did not "
                             "read; run again")
        header_index, columns = table.header()
        requests: list[dict] = []
        id_col = columns.get("ID")
        if id_col is None:  # added after every column in use, never by moving one
            id_col = table.width()
            requests.append(_cell_request(table.sheet_id, header_index, id_col, "ID"))
        for row_number, row_id in sorted(ids_by_row.items()):
            requests.append(_cell_request(table.sheet_id, row_number - 1, id_col, row_id))
        requests = _grow(table, id_col + 1) + requests
        failure: SheetError | None = None
        try:
            self.api.batch_update(requests)
        except SheetError as e:
            if not e.maybe_applied:
                raise
            failure = e  # perhaps stored: confirm what is there before saying anything
        fresh, _ = self._read()
        misplaced = self._misplaced(table, fresh, ids_by_row)
        if misplaced:
            # A row was inserted or moved between the read and the store: its ID is on
            # another row. Take those IDs back before anything is bought for them.
            self.api.batch_update([_cell_request(fresh.sheet_id, i, c, "") for i, c in misplaced])
            raise SheetError(f"{self.description}: rows were inserted or moved while new IDs were being stored, so "
                             f"{len(misplaced)} ID(s) were taken back; the new rows get their IDs at the next run")
        if failure is not None:
            raise failure
        plan = self._parse(fresh)
        self._keep(fresh)
        return _without_unidentified(plan)

    @staticmethod
    def _misplaced(before: _Table, after: _Table, ids_by_row: Mapping[int, str]) -> list[tuple[int, int]]:
        _, old_columns = before.header()
        header_index, columns = after.header()
        id_col = columns.get("ID")
        if id_col is None:
            return []
        wanted = {row_id: _fingerprint(before, row_number - 1, old_columns) for row_number, row_id in ids_by_row.items()}
        wrong = []
        for index in range(header_index + 1, len(after.rows)):
            row_id = _clean(after.cell(index, id_col))
            if row_id in wanted and _fingerprint(after, index, columns) != wanted[row_id]:
                wrong.append((index, id_col))
        return wrong

    # -- writing Log cells and History ---------------------------------------------------------

    def _history_sheet_id(self) -> int:
        kept = self.memory.recall(self.ref.spreadsheet_id, "history_sheet_id")
        return int(kept[0]) if kept else HISTORY_SHEET_ID

    def write_logs(self, lines_by_id: Mapping[str, str], history: Sequence[HistoryEntry] = (),
                   maybe_written: bool = False) -> set[str]:
        for attempt in (1, 2):
            try:
                return self._write_logs(lines_by_id, history, maybe_written)
            except SheetError as e:
                if attempt == 2 or f'sheet with the name "{HISTORY_TITLE}" already exists' not in str(e):
                    raise
                self._find_history()  # made by hand: find its id, then write once more
        raise AssertionError("unreachable")

    def _find_history(self) -> None:
        for sheet in self.api.metadata().get("sheets", []):
            if sheet["properties"]["title"] == HISTORY_TITLE:
                self.memory.remember(self.ref.spreadsheet_id, "history_sheet_id", str(sheet["properties"]["sheetId"]))
                return

    def _write_logs(self, lines_by_id: Mapping[str, str], history: Sequence[HistoryEntry],
                    maybe_written: bool) -> set[str]:
        history_id = self._history_sheet_id()
        check = maybe_written and bool(history)
        # Only the History's header row, unless a write may have been applied: then its keys.
        history_filter = {"gridRange": {"sheetId": history_id, "startColumnIndex": KEY_COLUMN,
                                        "endColumnIndex": KEY_COLUMN + 1}} if check else \
            {"gridRange": {"sheetId": history_id, "startRowIndex": 0, "endRowIndex": 1}}
        table, sheets = self._read([history_filter] if history else [])
        requests: list[dict] = []
        found: set[str] = set()
        header_index, columns = table.header()
        id_col = columns.get("ID")
        if id_col is not None and lines_by_id:
            log_col = columns.get("Log")
            cells: list[tuple[int, int, str]] = []
            for index in range(header_index + 1, len(table.rows)):
                row_id = _clean(table.cell(index, id_col))
                if row_id not in lines_by_id:
                    continue
                if log_col is None:
                    log_col = table.width()
                    cells.append((header_index, log_col, "Log"))
                found.add(row_id)
                if table.cell(index, log_col) != lines_by_id[row_id]:
                    cells.append((index, log_col, lines_by_id[row_id]))
            if cells:
                requests += _grow(table, max(c for _, c, _ in cells) + 1)
                requests += [_cell_request(table.sheet_id, r, c, v) for r, c, v in cells]
        if history:
            entries = list({e.key: e for e in history}.values())
            sheet = sheets.get(history_id)
            if sheet is not None and check:
                data = sheet.get("data", [])
                there = {_clean(r[KEY_COLUMN]) for r in _rows_of(data) if len(r) > KEY_COLUMN}
                entries = [e for e in entries if e.key not in there]
            rows = [_string_row([e.time, e.row_id, e.symbol, e.amount, e.quantity, e.price, e.status, e.order_ref,
                                 e.message, e.key]) for e in entries]
            if sheet is None:
                requests.append({"addSheet": {"properties": {
                    "sheetId": history_id, "title": HISTORY_TITLE,
                    "gridProperties": {"rowCount": 1000, "columnCount": len(HISTORY_COLUMNS), "frozenRowCount": 1}}}})
                rows.insert(0, _string_row(HISTORY_COLUMNS))
            if rows:
                requests.append({"appendCells": {"sheetId": history_id, "rows": rows, "fields": "userEnteredValue"}})
        if requests:
            self.api.batch_update(requests)
        return found

    # -- the panel's edits -------------------------------------------------------------------

    def write_cells(self, edits: Mapping[tuple[str, str], tuple[str, str]]) -> int:
        """Write what the person changed in the panel: (row ID, column) -> (value as loaded,
        new value). Only those cells are written, each found by its row's ID now; if any of
        them changed in the sheet since it was loaded, nothing is written and SheetConflict
        says which (reload, then edit again). Returns the number of cells written."""
        table, _ = self._read()
        header_index, columns = table.header()
        id_col = columns.get("ID")
        rows_by_id = {}
        if id_col is not None:
            for index in range(header_index + 1, len(table.rows)):
                rows_by_id.setdefault(_clean(table.cell(index, id_col)), index)
        conflicts, cells = [], []
        for (row_id, column), (loaded, new) in edits.items():
            name = canonical_header(column) or column
            index, col = rows_by_id.get(row_id), columns.get(name)
            if index is None or col is None:
                conflicts.append(f"row {row_id} or its {name} column is no longer in the sheet")
                continue
            now = table.cell(index, col)
            if _clean(now) != _clean(loaded):
                conflicts.append(f"{name} of row {index + 1} ({column_letter(col)}{index + 1}) is now "
                                 f"'{now[:40]}', not '{str(loaded)[:40]}'")
                continue
            if now != new:
                cells.append((index, col, str(new), name == "Amount (USD)"))
        if conflicts:
            raise SheetConflict("the sheet changed since it was loaded, so nothing was written: "
                                + "; ".join(conflicts) + ". Reload and make the change again")
        if cells:
            self.api.batch_update([_cell_request(table.sheet_id, r, c, v, n) for r, c, v, n in cells])
        return len(cells)

    # -- setting a sheet up --------------------------------------------------------------------

    def init(self) -> list[str]:
        """Prepare the plan worksheet and History: add only what is missing. Returns what was done."""
        table, _ = self._read()
        header_index, columns = table.header()
        meta = self.api.metadata()
        props = {s["properties"]["title"]: s["properties"] for s in meta.get("sheets", [])}
        plan_props = next(p for p in props.values() if p["sheetId"] == table.sheet_id)
        done: list[str] = []
        requests: list[dict] = []
        if not any(_clean(c) for r in table.rows for c in r):
            requests.append({"updateCells": {"start": {"sheetId": table.sheet_id, "rowIndex": 0, "columnIndex": 0},
                                             "rows": [_string_row(PLAN_COLUMNS)], "fields": "userEnteredValue"}})
            columns = {name: i for i, name in enumerate(PLAN_COLUMNS)}
            header_index = 0
            done.append(f"wrote the header row ({', '.join(PLAN_COLUMNS)})")
        else:
            missing = [c for c in PLAN_COLUMNS if c not in columns]
            at = table.width()
            for name in missing:
                requests.append(_cell_request(table.sheet_id, header_index, at, name))
                columns[name] = at
                at += 1
            if missing:
                requests = _grow(table, at) + requests
                done.append(f"added the column(s) {', '.join(missing)} at the end of the header")
        if plan_props.get("gridProperties", {}).get("frozenRowCount", 0) < header_index + 1:
            requests.append({"updateSheetProperties": {
                "properties": {"sheetId": table.sheet_id, "gridProperties": {"frozenRowCount": header_index + 1}},
                "fields": "gridProperties.frozenRowCount"}})
            done.append("froze the header row")
        for name, options in (("Status", ("Active", "Inactive")), ("Frequency", ("Daily", "Weekly", "Monthly"))):
            col = columns[name]
            requests.append({"setDataValidation": {
                "range": {"sheetId": table.sheet_id, "startRowIndex": header_index + 1,
                          "startColumnIndex": col, "endColumnIndex": col + 1},
                "rule": {"condition": {"type": "ONE_OF_LIST", "values": [{"userEnteredValue": o} for o in options]},
                         "showCustomUi": True, "strict": False}}})
        done.append("set the Status (Active/Inactive) and Frequency (Daily/Weekly/Monthly) dropdowns")
        if HISTORY_TITLE in props:
            self.memory.remember(self.ref.spreadsheet_id, "history_sheet_id", str(props[HISTORY_TITLE]["sheetId"]))
        else:
            history_id = self._history_sheet_id()
            if any(p["sheetId"] == history_id for p in props.values()):
                history_id = max(p["sheetId"] for p in props.values()) + 1
            requests.append({"addSheet": {"properties": {
                "sheetId": history_id, "title": HISTORY_TITLE,
                "gridProperties": {"rowCount": 1000, "columnCount": len(HISTORY_COLUMNS), "frozenRowCount": 1}}}})
            requests.append({"appendCells": {"sheetId": history_id, "rows": [_string_row(HISTORY_COLUMNS)],
                                             "fields": "userEnteredValue"}})
            self.memory.remember(self.ref.spreadsheet_id, "history_sheet_id", str(history_id))
            done.append(f"added the {HISTORY_TITLE} worksheet")
        self.api.batch_update(requests)
        return done


def _without_unidentified(plan: ParsedPlan) -> ParsedPlan:
    """Rows that appeared while IDs were being stored have none yet: not bought this run."""
    if not plan.unidentified:
        return plan
    waiting = set(plan.unidentified)
    for row in [r for r in plan.rows if r.row_number in waiting]:
        plan.rows.remove(row)
        plan.issues.append(RowIssue(row.row_number, f"Row {row.row_number}: appeared while new IDs were being "
                                    "stored; it gets its ID at the next run", False, None, row.symbol))
    plan.unidentified = []
    return plan


def build_sheet_source(ref: SheetRef, credentials_path: Path | None, base_url: str = SHEETS_API_URL,
                       clock: Clock | None = None, policy: RetryPolicy = RetryPolicy(),
                       rng: random.Random | None = None, memory: Memory | None = None) -> SheetPlanSource:
    if credentials_path is None:
        raise SheetError("the plan is a Google Sheet, but no credentials are set: point "
                         "GOOGLE_APPLICATION_CREDENTIALS at the service account's key file (see README, Google Sheets)")
    credentials = load_credentials(credentials_path)
    api = SheetsApi(credentials, ref.spreadsheet_id, base_url, clock, policy, rng)
    return SheetPlanSource(ref, api, memory)
