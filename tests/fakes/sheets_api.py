"""A local Google Sheets API v4 emulator, with an OAuth token endpoint, for driving the
real gspread and google-auth over real HTTP.

It keeps spreadsheets in memory and answers the way the real API does where that hides
bugs: every cell comes back as its *formatted* string (a number formatted as currency
reads "$1,000.00"), an empty range has no `values`/`rowData` at all, trailing blank cells
and rows are trimmed (rows come back ragged), an A1 range naming a missing worksheet is a
400 "Unable to parse range", a write past the grid is a 400 "exceeds grid limits", and a
`batchUpdate` is atomic (all of its requests apply, or none). Faults are scripted per
request (429 with Retry-After, 5xx before or after applying a write, 403, 404, slow),
hooks let a test play a person editing the sheet between two requests, and every
request is logged for counting.

Endpoints: POST /token (JWT bearer grant, as a service account's `token_uri`);
GET /v4/spreadsheets/{id} (metadata, optionally with grid data for `ranges`);
POST /v4/spreadsheets/{id}:getByDataFilter; POST /v4/spreadsheets/{id}:batchUpdate
(updateCells, appendCells, appendDimension, addSheet, updateSheetProperties,
setDataValidation); GET /v4/spreadsheets/{id}/values/{range} and values:batchGet;
POST values:batchUpdate; POST values/{range}:append.

By hand:  python -m tests.fakes.sheets_api --port 8765 --credentials /tmp/sa.json
prints the DCA_PLAN, DCA_SHEETS_API_URL and GOOGLE_APPLICATION_CREDENTIALS to use.
"""

from __future__ import annotations

import argparse
import base64
import copy
import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

SCOPES_OK = ("https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive")


# -- state -------------------------------------------------------------------------------


@dataclass
class Cell:
    """What a person typed (a string or a number) and how a number is shown."""

    value: str | int | float | Decimal | bool | None = None
    number_format: str | None = None  # "currency": $1,000.00; "plain" or None: as typed

    @property
    def formatted(self) -> str:
        v = self.value
        if v is None:
            return ""
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (int, float, Decimal)):
            if self.number_format == "currency":
                return f"${Decimal(str(v)):,.2f}"
            d = Decimal(str(v))
            return f"{d.normalize():f}" if d == d.to_integral_value() else str(v)
        return str(v)


@dataclass
class Worksheet:
    sheet_id: int
    title: str
    rows: list[list[Cell]] = field(default_factory=list)
    row_count: int = 1000
    column_count: int = 26
    frozen_rows: int = 0
    validations: dict[tuple[int, int], dict] = field(default_factory=dict)  # (row, col) -> rule

    def cell(self, r: int, c: int) -> Cell:
        while len(self.rows) <= r:
            self.rows.append([])
        row = self.rows[r]
        while len(row) <= c:
            row.append(Cell())
        return row[c]

    def values(self) -> list[list[str]]:
        """Formatted, with trailing blank cells and rows trimmed, as the API returns them."""
        out = [[c.formatted for c in row] for row in self.rows]
        for row in out:
            while row and row[-1] == "":
                row.pop()
        while out and not out[-1]:
            out.pop()
        return out

    def properties(self, index: int) -> dict:
        grid = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        return {"sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID",
                "gridProperties": grid}


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str = "Recurring investments"
    sheets: list[Worksheet] = field(default_factory=list)
    # Accounts (service-account e-mails) allowed to read, and to write.
    readers: set[str] | None = None  # None: anyone with a token
    writers: set[str] | None = None

    def by_title(self, title: str) -> Worksheet | None:
        return next((s for s in self.sheets if s.title == title), None)

    def by_id(self, sheet_id: int) -> Worksheet | None:
        return next((s for s in self.sheets if s.sheet_id == sheet_id), None)


@dataclass
class Fault:
    """A scripted answer for the next requests that `match` (method and a path fragment).

    `status` 429 (with `retry_after` seconds), 500/503, 403, 404; `apply_first`: for a
    write, apply it and then answer with the error (the case a client cannot tell from a
    failure); `delay`: seconds to wait before answering (slow, for timeouts)."""

    match: str = ""  # e.g. ":batchUpdate", ":getByDataFilter", "/token"; "" matches all
    status: int | None = 500
    times: int = 1
    retry_after: float | None = None
    apply_first: bool = False
    delay: float = 0.0
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.match in path and (self.method is None or self.method == method)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    account: str | None = None

    @property
    def kind(self) -> str:
        """'token', 'read' or 'write', as Google counts quota."""
        if self.path.endswith("/token"):
            return "token"
        write = self.method in ("PUT", "DELETE") or re.search(r":(batchUpdate|append|clear|batchClear)$", self.path)
        return "write" if write else "read"


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str):
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


# -- A1 notation ---------------------------------------------------------------------------


def column_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


_A1 = re.compile(r"^(?:(?P<sheet>'(?:[^']|'')*'|[^!']+)!)?(?P<rest>.*)$")
_CELL = re.compile(r"^(?P<col>[A-Za-z]*)(?P<row>\d*)$")


def parse_a1(text: str) -> tuple[str | None, tuple[int, int, int | None, int | None]]:
    """"'Plan'!A2:C" -> ("Plan", (row0, col0, row_end or None, col_end or None)), ends exclusive."""
    m = _A1.match(text)
    sheet = m["sheet"]
    if sheet is not None and sheet.startswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    rest = m["rest"]
    if sheet is None and ":" not in rest and not _CELL.match(rest or "-"):
        if rest.startswith("'") and rest.endswith("'"):
            rest = rest[1:-1].replace("''", "'")
        return rest, (0, 0, None, None)  # a bare sheet title
    if not rest:
        return sheet, (0, 0, None, None)
    first, _, last = rest.partition(":")
    a, b = _CELL.match(first), _CELL.match(last or first)
    if a is None or b is None:
        raise ApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
    r0 = int(a["row"]) - 1 if a["row"] else 0
    c0 = column_index(a["col"]) if a["col"] else 0
    r1 = int(b["row"]) if b["row"] else None
    c1 = column_index(b["col"]) + 1 if b["col"] else None
    return sheet, (r0, c0, r1, c1)


# -- the server ---------------------------------------------------------------------------


class SheetsEmulator:
    """Start with `with SheetsEmulator() as api:`; `api.base_url`, `api.token_uri`."""

    def __init__(self):
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        # Called with each request before it is answered (a person's edit, a row moved).
        self.hooks: list[Callable[[Request], None]] = []
        self.tokens: dict[str, str] = {}  # access token -> account
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, port: int = 0) -> "SheetsEmulator":
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                emulator._handle(self, "GET")

            def do_POST(self):
                emulator._handle(self, "POST")

            def do_PUT(self):
                emulator._handle(self, "PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    # -- what tests set up and look at -------------------------------------------------

    def add_spreadsheet(self, spreadsheet_id: str, worksheets: dict[str, list[list[Any]]] | None = None,
                        **kwargs) -> Spreadsheet:
        sheet = Spreadsheet(spreadsheet_id, **kwargs)
        for index, (title, rows) in enumerate((worksheets or {"Sheet1": []}).items()):
            ws = Worksheet(sheet_id=0 if index == 0 else 1000 + index, title=title)
            self._fill(ws, rows)
            sheet.sheets.append(ws)
        with self.lock:
            self.spreadsheets[spreadsheet_id] = sheet
        return sheet

    @staticmethod
    def _fill(ws: Worksheet, rows: list[list[Any]]) -> None:
        ws.rows = [[v if isinstance(v, Cell) else Cell(None if v == "" else v) for v in row] for row in rows]
        ws.row_count = max(ws.row_count, len(rows))
        ws.column_count = max(ws.column_count, max((len(r) for r in rows), default=0))

    def worksheet(self, spreadsheet_id: str, title: str) -> Worksheet:
        ws = self.spreadsheets[spreadsheet_id].by_title(title)
        assert ws is not None, f"no worksheet {title}"
        return ws

    def values(self, spreadsheet_id: str, title: str) -> list[list[str]]:
        with self.lock:
            return self.worksheet(spreadsheet_id, title).values()

    def set_cell(self, spreadsheet_id: str, title: str, a1: str, value: Any) -> None:
        """A person typing into a cell."""
        _, (r, c, _, _) = parse_a1(a1)
        with self.lock:
            self.worksheet(spreadsheet_id, title).cell(r, c).value = None if value == "" else value

    def insert_row(self, spreadsheet_id: str, title: str, index: int, values: list[Any]) -> None:
        """A person inserting a row at 0-based `index` (everything below moves down)."""
        with self.lock:
            ws = self.worksheet(spreadsheet_id, title)
            while len(ws.rows) < index:
                ws.rows.append([])
            ws.rows.insert(index, [Cell(None if v == "" else v) for v in values])
            ws.row_count += 1

    def move_row(self, spreadsheet_id: str, title: str, source: int, target: int) -> None:
        with self.lock:
            ws = self.worksheet(spreadsheet_id, title)
            row = ws.rows.pop(source)
            ws.rows.insert(target, row)

    def fail(self, match: str = "", status: int | None = 500, **kwargs) -> Fault:
        fault = Fault(match, status, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def on_request(self, number: int, action: Callable[[], None]) -> None:
        """Run `action` just before the `number`-th API request (1-based, tokens not
        counted) from now is answered."""
        target = self.api_requests() + number

        def hook(request: Request) -> None:
            if request.kind != "token" and self.api_requests() == target:
                action()

        self.hooks.append(hook)

    def api_requests(self, kind: str | None = None) -> int:
        return sum(1 for r in self.requests if r.kind != "token" and (kind is None or r.kind == kind))

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- HTTP ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if path == "/token":
            body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        request = Request(method, path, query, body)
        with self.lock:
            self.requests.append(request)
            hooks = list(self.hooks)
        for hook in hooks:
            hook(request)
        with self.lock:
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        status, payload, headers = 200, {}, {}
        try:
            if fault is not None and fault.status is not None and not fault.apply_first:
                raise ApiError(fault.status, _fault_message(fault.status), _STATUS_NAMES.get(fault.status, "ERROR"))
            with self.lock:
                payload = self._route(handler, method, path, query, body, request)
            if fault is not None and fault.status is not None:  # applied, then failed
                raise ApiError(fault.status, _fault_message(fault.status), _STATUS_NAMES.get(fault.status, "ERROR"))
        except ApiError as e:
            status = e.status
            payload = {"error": {"code": e.status, "message": e.message, "status": e.reason}}
            if fault is not None and fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
        request.status = status
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def _route(self, handler, method: str, path: str, query, body, request: Request) -> Any:
        if path == "/token" and method == "POST":
            return self._token(body)
        account = self._account(handler)
        request.account = account
        m = re.match(r"^/v4/spreadsheets/([^/:]+)(.*)$", path)
        if m is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        sheet = self.spreadsheets.get(m[1])
        if sheet is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        rest = m[2]
        write = request.kind == "write"
        if write:
            permitted = sheet.writers is None or account in sheet.writers
        else:
            permitted = sheet.readers is None or account in sheet.readers or account in (sheet.writers or ())
        if not permitted:
            raise ApiError(403, "The caller does not have permission", "PERMISSION_DENIED")
        if rest == "" and method == "GET":
            ranges = query.get("ranges", [])
            grid = query.get("includeGridData", ["false"])[0] == "true"
            if ranges:
                filters = [{"a1Range": r} for r in ranges]
                return self._spreadsheet(sheet, self._match(sheet, filters), grid)
            return self._spreadsheet(sheet, [(ws, (0, 0, None, None)) for ws in sheet.sheets], grid)
        if rest == ":getByDataFilter" and method == "POST":
            filters = (body or {}).get("dataFilters") or []
            matched = self._match(sheet, filters) if filters else [(ws, (0, 0, None, None)) for ws in sheet.sheets]
            return self._spreadsheet(sheet, matched, bool((body or {}).get("includeGridData")))
        if rest == ":batchUpdate" and method == "POST":
            return self._batch_update(sheet, (body or {}).get("requests") or [])
        if rest.startswith("/values"):
            return self._values(sheet, method, rest, query, body)
        raise ApiError(404, f"Method not found: {method} {rest}", "NOT_FOUND")

    def _token(self, body: dict) -> dict:
        if body.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or "assertion" not in body:
            raise ApiError(400, "invalid_grant", "INVALID_ARGUMENT")
        claims = _jwt_claims(body["assertion"])
        scopes = str(claims.get("scope", "")).split()
        if not any(s in SCOPES_OK for s in scopes):
            raise ApiError(400, "invalid_scope", "INVALID_ARGUMENT")
        token = f"emu-token-{len(self.tokens) + 1}"
        self.tokens[token] = claims.get("iss", "")
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _account(self, handler) -> str:
        auth = handler.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise ApiError(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        return self.tokens[token]

    # -- reading -----------------------------------------------------------------------

    def _match(self, sheet: Spreadsheet, filters: list[dict]) -> list[tuple[Worksheet, tuple]]:
        matched: list[tuple[Worksheet, tuple]] = []
        for f in filters:
            if "a1Range" in f:
                title, box = parse_a1(f["a1Range"])
                ws = sheet.sheets[0] if title is None else sheet.by_title(title)
                if ws is None:
                    raise ApiError(400, f"Unable to parse range: {f['a1Range']}", "INVALID_ARGUMENT")
            elif "gridRange" in f:
                g = f["gridRange"]
                ws = sheet.by_id(int(g.get("sheetId", 0)))
                if ws is None:
                    continue  # a filter that matches nothing is no error
                box = (g.get("startRowIndex", 0), g.get("startColumnIndex", 0), g.get("endRowIndex"),
                       g.get("endColumnIndex"))
            else:
                raise ApiError(400, "Unsupported data filter", "INVALID_ARGUMENT")
            matched.append((ws, box))
        return matched

    def _spreadsheet(self, sheet: Spreadsheet, matched: list[tuple[Worksheet, tuple]], grid: bool) -> dict:
        out_sheets: list[dict] = []
        seen: dict[int, dict] = {}
        for ws, box in matched:
            entry = seen.get(ws.sheet_id)
            if entry is None:
                entry = {"properties": ws.properties(sheet.sheets.index(ws))}
                seen[ws.sheet_id] = entry
                out_sheets.append(entry)
            if grid:
                entry.setdefault("data", []).append(_grid_data(ws, box))
        out_sheets.sort(key=lambda s: s["properties"]["index"])
        return {"spreadsheetId": sheet.spreadsheet_id,
                "properties": {"title": sheet.title, "locale": "en_US", "timeZone": "America/New_York"},
                "sheets": out_sheets,
                "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sheet.spreadsheet_id}/edit"}

    def _values(self, sheet: Spreadsheet, method: str, rest: str, query, body) -> dict:
        if rest == "/values:batchGet" and method == "GET":
            return {"spreadsheetId": sheet.spreadsheet_id,
                    "valueRanges": [self._value_range(sheet, r) for r in query.get("ranges", [])]}
        if rest == "/values:batchUpdate" and method == "POST":
            staged = copy.deepcopy(sheet.sheets)
            for item in body.get("data", []):
                self._put_values(sheet, staged, item["range"], item.get("values") or [])
            sheet.sheets = staged
            return {"spreadsheetId": sheet.spreadsheet_id, "totalUpdatedCells": 0}
        m = re.match(r"^/values/(.+?)(:append)?$", rest)
        if m is None:
            raise ApiError(404, "Method not found", "NOT_FOUND")
        if m[2] and method == "POST":
            title, _ = parse_a1(m[1])
            ws = sheet.sheets[0] if title is None else sheet.by_title(title)
            if ws is None:
                raise ApiError(400, f"Unable to parse range: {m[1]}", "INVALID_ARGUMENT")
            start = len(ws.values())
            for row in body.get("values") or []:
                ws.rows[start:start] = [[Cell(None if v in ("", None) else v) for v in row]]
                start += 1
            ws.row_count = max(ws.row_count, start)
            return {"spreadsheetId": sheet.spreadsheet_id, "updates": {"updatedRows": len(body.get("values") or [])}}
        if method == "GET":
            return self._value_range(sheet, m[1])
        if method == "PUT":
            staged = copy.deepcopy(sheet.sheets)
            self._put_values(sheet, staged, m[1], (body or {}).get("values") or [])
            sheet.sheets = staged
            return {"spreadsheetId": sheet.spreadsheet_id}
        raise ApiError(404, "Method not found", "NOT_FOUND")

    def _value_range(self, sheet: Spreadsheet, a1: str) -> dict:
        title, (r0, c0, r1, c1) = parse_a1(a1)
        ws = sheet.sheets[0] if title is None else sheet.by_title(title)
        if ws is None:
            raise ApiError(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
        rows = [row[c0:c1] for row in ws.values()[r0:r1]]
        while rows and not rows[-1]:
            rows.pop()
        out = {"range": f"'{ws.title}'!{a1.split('!')[-1]}", "majorDimension": "ROWS"}
        if rows:
            out["values"] = rows
        return out

    @staticmethod
    def _put_values(sheet: Spreadsheet, staged: list[Worksheet], a1: str, values: list[list[Any]]) -> None:
        title, (r0, c0, _, _) = parse_a1(a1)
        ws = staged[0] if title is None else next((s for s in staged if s.title == title), None)
        if ws is None:
            raise ApiError(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                _check_grid(ws, r0 + i, c0 + j)
                ws.cell(r0 + i, c0 + j).value = None if v in ("", None) else v

    # -- writing -----------------------------------------------------------------------

    def _batch_update(self, sheet: Spreadsheet, requests: list[dict]) -> dict:
        """All requests apply to a copy, which replaces the sheets only if every one worked."""
        staged = copy.deepcopy(sheet.sheets)
        replies = []
        for item in requests:
            (kind, spec), = item.items()
            replies.append(self._apply(staged, kind, spec))
        sheet.sheets = staged
        return {"spreadsheetId": sheet.spreadsheet_id, "replies": replies}

    def _apply(self, staged: list[Worksheet], kind: str, spec: dict) -> dict:
        def sheet_of(sheet_id) -> Worksheet:
            ws = next((s for s in staged if s.sheet_id == int(sheet_id or 0)), None)
            if ws is None:
                raise ApiError(400, f"Invalid requests[{kind}]: No grid with id: {sheet_id}", "INVALID_ARGUMENT")
            return ws

        if kind == "addSheet":
            props = spec.get("properties", {})
            title = props.get("title") or f"Sheet{len(staged) + 1}"
            if any(s.title == title for s in staged):
                raise ApiError(400, f'Invalid requests[0].addSheet: A sheet with the name "{title}" already '
                               "exists. Please enter another name.", "INVALID_ARGUMENT")
            sheet_id = props.get("sheetId")
            if sheet_id is None:
                sheet_id = max((s.sheet_id for s in staged), default=0) + 1
            elif any(s.sheet_id == sheet_id for s in staged):
                raise ApiError(400, f"Invalid requests[0].addSheet: Sheet with id {sheet_id} already exists.",
                               "INVALID_ARGUMENT")
            grid = props.get("gridProperties", {})
            ws = Worksheet(sheet_id, title, row_count=grid.get("rowCount", 1000),
                           column_count=grid.get("columnCount", 26), frozen_rows=grid.get("frozenRowCount", 0))
            staged.append(ws)
            return {"addSheet": {"properties": ws.properties(len(staged) - 1)}}
        if kind == "updateSheetProperties":
            props = spec["properties"]
            ws = sheet_of(props.get("sheetId"))
            grid = props.get("gridProperties", {})
            if "frozenRowCount" in grid:
                ws.frozen_rows = grid["frozenRowCount"]
            if "title" in props:
                ws.title = props["title"]
            return {}
        if kind == "appendDimension":
            ws = sheet_of(spec.get("sheetId"))
            if spec.get("dimension") == "COLUMNS":
                ws.column_count += int(spec["length"])
            else:
                ws.row_count += int(spec["length"])
            return {}
        if kind == "updateCells":
            if "start" in spec:
                ws, r0, c0 = sheet_of(spec["start"].get("sheetId")), spec["start"].get("rowIndex", 0), \
                    spec["start"].get("columnIndex", 0)
            else:
                g = spec["range"]
                ws, r0, c0 = sheet_of(g.get("sheetId")), g.get("startRowIndex", 0), g.get("startColumnIndex", 0)
            if "userEnteredValue" not in spec.get("fields", ""):
                raise ApiError(400, "updateCells: fields must include userEnteredValue", "INVALID_ARGUMENT")
            for i, row in enumerate(spec.get("rows", [])):
                for j, value in enumerate(row.get("values", [])):
                    _check_grid(ws, r0 + i, c0 + j)
                    ws.cell(r0 + i, c0 + j).value = _entered(value)
            return {}
        if kind == "appendCells":
            ws = sheet_of(spec.get("sheetId"))
            start = len(ws.values())
            for i, row in enumerate(spec.get("rows", [])):
                if start + i >= ws.row_count:
                    ws.row_count = start + i + 1  # appendCells grows the grid
                for j, value in enumerate(row.get("values", [])):
                    _check_grid(ws, start + i, j)
                    ws.cell(start + i, j).value = _entered(value)
            return {}
        if kind == "setDataValidation":
            g = spec["range"]
            ws = sheet_of(g.get("sheetId"))
            for r in range(g.get("startRowIndex", 0), g.get("endRowIndex", ws.row_count)):
                for c in range(g.get("startColumnIndex", 0), g.get("endColumnIndex", ws.column_count)):
                    ws.validations[(r, c)] = spec.get("rule", {})
            return {}
        raise ApiError(400, f"Invalid JSON payload: unknown request {kind}", "INVALID_ARGUMENT")


def _check_grid(ws: Worksheet, r: int, c: int) -> None:
    if r >= ws.row_count or c >= ws.column_count:
        raise ApiError(400, f"Range ('{ws.title}'!R{r + 1}C{c + 1}) exceeds grid limits. Max rows: "
                       f"{ws.row_count}, max columns: {ws.column_count}", "INVALID_ARGUMENT")


def _entered(value: dict) -> Any:
    entered = value.get("userEnteredValue") or {}
    if "stringValue" in entered:
        return entered["stringValue"] or None
    if "numberValue" in entered:
        return entered["numberValue"]
    if "boolValue" in entered:
        return entered["boolValue"]
    if "formulaValue" in entered:
        return entered["formulaValue"]
    return None


def _grid_data(ws: Worksheet, box: tuple) -> dict:
    r0, c0, r1, c1 = box
    rows = [row[c0:c1] for row in ws.values()[r0:r1]]
    while rows and not rows[-1]:
        rows.pop()
    data: dict[str, Any] = {"startRow": r0, "startColumn": c0}
    if rows:
        # An empty cell is an empty object, a blank row an empty object: as the API sends them.
        data["rowData"] = [{"values": [{"formattedValue": v} if v != "" else {} for v in row]} if row else {}
                           for row in rows]
    return data


def _fault_message(status: int) -> str:
    return {429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'",
            500: "Internal error encountered.", 503: "The service is currently unavailable.",
            403: "The caller does not have permission", 404: "Requested entity was not found."}.get(status, "error")


def _jwt_claims(assertion: str) -> dict:
    try:
        payload = assertion.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as e:
        raise ApiError(400, "invalid_grant: malformed assertion", "INVALID_ARGUMENT") from e


# -- credentials for tests and for trying it by hand --------------------------------------


@functools.lru_cache(maxsize=1)
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def service_account_info(token_uri: str, email: str = "dca-bot@dca-test.iam.gserviceaccount.com") -> dict:
    """A service-account key file's content, with an RSA key made for the process, for this emulator."""
    pem = _private_key_pem()
    return {"type": "service_account", "project_id": "dca-test", "private_key_id": "emulator-key",
            "private_key": pem, "client_email": email, "client_id": "1", "token_uri": token_uri}


def point_dca_at(emulator: "SheetsEmulator", folder, monkeypatch) -> None:
    """Set the environment so dca's real gspread client talks to `emulator`: a service
    account key file for it in `folder`, and the API's address."""
    key = Path(folder) / "service-account.json"
    key.write_text(json.dumps(service_account_info(emulator.token_uri)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("DCA_SHEETS_API_URL", emulator.base_url)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local Google Sheets API emulator for trying dca.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--credentials", default="emulator-service-account.json",
                        help="where to write a service-account key file for the emulator")
    args = parser.parse_args()
    api = SheetsEmulator().start(args.port)
    header = ["Status", "Stock Symbol", "Amount (USD)", "Frequency", "Log"]
    api.add_spreadsheet("emulated-sheet", {"Plan": [header, ["Active", "AAPL", "$10.00", "Weekly", ""],
                                                    ["Active", "VTI", "1,000", "Monthly", ""]]})
    with open(args.credentials, "w", encoding="utf-8") as f:
        json.dump(service_account_info(api.token_uri), f)
    print(f"DCA_PLAN=https://docs.google.com/spreadsheets/d/emulated-sheet/edit#gid=0\n"
          f"DCA_SHEETS_API_URL={api.base_url}\nGOOGLE_APPLICATION_CREDENTIALS={args.credentials}\n"
          "(Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()


if __name__ == "__main__":
    main()
