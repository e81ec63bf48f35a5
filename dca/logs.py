"""Logs worth reading: rotating files in the data directory, each line with the run id and
the execution key it concerns, and no secret in any of them, whoever logged it.

Redaction happens twice. A log record factory redacts every record as it is made, so a
handler that a library installs for itself (ibind can log to its own files) never sees
a secret either; and a filter on our own handlers does it again for records made some
other way (`logging.makeLogRecord`). Secrets are known two ways: the values of the
settings marked secret (registered at start), and patterns that look like one anywhere
(a Discord webhook's token, `Bearer …`, `token=…`, `"password": "…"`, a private key).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.handlers
import re
import sys
import threading
from pathlib import Path
from typing import Iterable, Iterator

MASK = "****"

_run_id: contextvars.ContextVar[str] = contextvars.ContextVar("dca_run_id", default="-")
_execution: contextvars.ContextVar[str] = contextvars.ContextVar("dca_execution", default="-")

_known: dict[str, str] = {}
_known_lock = threading.Lock()
_known_pattern: re.Pattern | None = None

_PATTERNS: list[tuple[re.Pattern, str]] = [
    # A Discord webhook: the token after the id is the secret (the id alone lets no one post).
    (re.compile(r"(/api(?:/v\d+)?/webhooks/\d+/)[\w.\-%]+"), r"\1" + MASK),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
     "[private key " + MASK + "]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)(authorization|cookie|x-api-key)(['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"), r"\1\2" + MASK),
    # key=value and "key": "value" for names that hold secrets (URL queries, dict reprs, JSON).
    (re.compile(r"(?i)([\"']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|"
                r"client[_-]?secret|credential)[\w-]*[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;}\"']+)"),
     r"\1" + MASK),
    # A bare `key=` in a URL query (Google API keys travel so).
    (re.compile(r"(?i)([?&;]key=)[^\s&#\"']+"), r"\1" + MASK),
]


def register_secret(value: str | None, shown: str = MASK) -> None:
    """Redact this exact value (and its URL-quoted form) wherever it appears from now on,
    as `shown` (e.g. a webhook URL shown with its token masked)."""
    if not value or len(str(value)) < 6:  # a very short value would mask ordinary words
        return
    from urllib.parse import quote

    global _known_pattern
    with _known_lock:
        _known.update({str(value): shown, quote(str(value), safe=""): shown})
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def register_settings(settings) -> None:
    """Register the values of every setting marked secret (`field(metadata={"secret": True})`)."""
    from dataclasses import fields

    for f in fields(settings):
        if f.metadata.get("secret"):
            value = getattr(settings, f.name)
            for item in (value.values() if isinstance(value, dict) else [value]):
                register_secret(None if item is None else str(item))


def redact(text: str) -> str:
    """`text` with every known secret and everything that looks like one masked."""
    if not text:
        return text
    pattern = _known_pattern
    if pattern is not None:
        known = _known
        text = pattern.sub(lambda m: known.get(m[0], MASK), text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


# -- context: which run, which execution --------------------------------------------------


@contextlib.contextmanager
def context(run: int | str | None = None, execution: str | None = None) -> Iterator[None]:
    """Every line logged inside says this run id and/or execution key."""
    tokens = []
    if run is not None:
        tokens.append((_run_id, _run_id.set(str(run))))
    if execution is not None:
        tokens.append((_execution, _execution.set(execution)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def execution_key(row_id: str, scheduled_date) -> str:
    """How an execution is named in the logs: its ledger key, row ID and scheduled date."""
    return f"{row_id}/{scheduled_date}"


# -- records --------------------------------------------------------------------------------


def _scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in the record's message (arguments merged in), traceback and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to the handler's own error path
        return record
    record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """Masks secrets in a record (message, arguments, traceback) and adds its context."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)  # again: `extra` fields and records not made by the factory
        if not hasattr(record, "run_id"):
            record.run_id = _run_id.get()
        if not hasattr(record, "execution"):
            record.execution = _execution.get()
        return True


_factory_installed = False


def install_record_factory() -> None:
    """Redact every record at its making, whichever logger and handler it goes to."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        return _scrub(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _factory_installed = True


# -- handlers -------------------------------------------------------------------------------

FORMAT = "%(asctime)s %(levelname)s run=%(run_id)s exec=%(execution)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 5
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (a test's capture, a redirected stream)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_console(verbose: bool = False, stream=None) -> None:
    """Console output for the CLI: warnings (everything from INFO with -v) to stderr."""
    install_record_factory()
    root = logging.getLogger()
    for handler in list(root.handlers):  # a fresh start: also no file of an earlier setup
        if getattr(handler, "_dca", False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream) if stream else _Stderr()
    handler._dca = "console"
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    _lower_root(root)


def setup_file(path: Path, level: str = "INFO", max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> Path | None:
    """Rotating log file (at most `backups` old files of `max_bytes` each). Returns the
    path, or None when it cannot be written: a read-only data folder must not stop
    commands that only read, so that is one warning on the console, not an error."""
    install_record_factory()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dca", None) == "file":
            root.removeHandler(handler)
            handler.close()
    try:
        from dca.sqlite_conn import is_writable

        if not path.parent.is_dir():
            # Only inside a folder that exists and may be written (permission bits are
            # checked, as root would write anywhere): a read-only data folder stays as it is.
            if not path.parent.parent.is_dir() or not is_writable(path.parent.parent):
                raise OSError(0, "its folder cannot be created")
            path.parent.mkdir(exist_ok=True)
        if (not is_writable(path.parent) or not is_writable(path.parent.parent)
                or (path.exists() and not is_writable(path))):
            raise OSError(0, "it or its folder is read-only")
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                       encoding="utf-8", delay=False)
    except OSError as e:
        logging.getLogger(__name__).info("no log file: %s cannot be written (%s)", path,
                                            (e.strerror or str(e)).lower())
        return None
    handler._dca = "file"
    handler.setLevel(getattr(logging, level.upper(), logging.INFO))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    _lower_root(root)
    return path


def _lower_root(root: logging.Logger) -> None:
    levels = [h.level for h in root.handlers if getattr(h, "_dca", False)]
    if levels:
        root.setLevel(min(levels))


def our_handlers() -> Iterable[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_dca", False)]
