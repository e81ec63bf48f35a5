"""Logs: rotating files, the run and execution on each line, and no secret in any of them."""

from __future__ import annotations

import logging

import pytest

from dca import logs

WEBHOOK = "https://discord.com/api/webhooks/987654321098765432/Zx9-webhookTOKEN_abcdefghij"
SECRETS = {
    "webhook token": "Zx9-webhookTOKEN_abcdefghij",
    "ibkr password": "hunter2-Passw0rd!",
    "oauth token": "ya29.a0AfH6SMBxLongGoogleAccessToken123",
    "api key": "AIzaSyD-FAKE-GOOGLE-API-KEY-0123456789",
    "private key body": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "registered value": "my-own-secret-value-42",
}


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "logs" / "dca.log"
    assert logs.setup_file(path, "DEBUG") == path
    yield path
    for handler in logs.our_handlers():
        logging.getLogger().removeHandler(handler)
        handler.close()


def written(path) -> str:
    for handler in logs.our_handlers():
        handler.flush()
    return "".join(p.read_text() for p in sorted(path.parent.glob("dca.log*")))


def test_each_kind_of_secret_logged_by_anyone_is_found_nowhere(log_file):
    logs.register_secret(SECRETS["registered value"])
    ibind = logging.getLogger("ibind.client")  # libraries log through their own loggers
    gspread = logging.getLogger("gspread.http_client")
    requests_log = logging.getLogger("urllib3.connectionpool")
    requests_log.debug("POST %s?wait=true", WEBHOOK)
    requests_log.warning("Retrying after connection broken: %s", f"HTTPSConnectionPool(host='discord.com'): "
                         f"Max retries exceeded with url: /api/webhooks/987654321098765432/{SECRETS['webhook token']}")
    ibind.info("login with {'username': 'jdoe', 'password': '%s'}", SECRETS["ibkr password"])
    ibind.info("oauth: access_token=%s&expires=3600", SECRETS["oauth token"])
    gspread.info("headers {'Authorization': 'Bearer %s'}", SECRETS["oauth token"])
    gspread.info("GET https://sheets.googleapis.com/v4/spreadsheets/abc?key=%s", SECRETS["api key"])
    gspread.error("credentials: -----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----",
                  SECRETS["private key body"])
    logging.getLogger("dca.anything").warning("my value is %s", SECRETS["registered value"])
    try:
        raise RuntimeError(f"failed for {WEBHOOK}")
    except RuntimeError:
        logging.getLogger("dca.delivery").exception("delivery broke")
    text = written(log_file)
    for kind, secret in SECRETS.items():
        assert secret not in text, kind
    assert text.count("****") >= 8
    assert "/api/webhooks/987654321098765432/****" in text  # what it was is still readable
    assert "delivery broke" in text and "Traceback" in text and "RuntimeError" in text


def test_a_handler_a_library_installs_for_itself_gets_no_secret_either(tmp_path, log_file):
    own = tmp_path / "ibind.log"
    handler = logging.FileHandler(own)  # as ibind does with its LOG_TO_FILE
    library = logging.getLogger("ibind.own")
    library.addHandler(handler)
    try:
        library.warning("token=%s", SECRETS["oauth token"])
    finally:
        library.removeHandler(handler)
        handler.close()
    assert SECRETS["oauth token"] not in own.read_text() and "token=****" in own.read_text()


def test_each_line_names_its_run_and_execution(log_file):
    log = logging.getLogger("dca.engine")
    log.info("before any run")
    with logs.context(run=7):
        log.info("run starts")
        log.info("outcome filled", extra={"execution": logs.execution_key("r1", "2026-12-01")})
        with logs.context(execution="r2/2026-12-01"):
            log.info("intent")
    lines = written(log_file).splitlines()
    assert "run=- exec=- dca.engine: before any run" in lines[0]
    assert "run=7 exec=- dca.engine: run starts" in lines[1]
    assert "run=7 exec=r1/2026-12-01 dca.engine: outcome filled" in lines[2]
    assert "run=7 exec=r2/2026-12-01 dca.engine: intent" in lines[3]


def test_files_rotate_and_keep_a_bounded_count(tmp_path):
    path = tmp_path / "logs" / "dca.log"
    logs.setup_file(path, "INFO", max_bytes=2_000, backups=3)
    try:
        for i in range(400):
            logging.getLogger("dca.test").info("line %d %s", i, "x" * 40)
    finally:
        for handler in logs.our_handlers():
            logging.getLogger().removeHandler(handler)
            handler.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["dca.log", "dca.log.1", "dca.log.2", "dca.log.3"]
    assert all(p.stat().st_size <= 2_200 for p in path.parent.iterdir())
    assert "line 399" in path.read_text()


def test_a_read_only_folder_means_no_log_file_not_an_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert logs.setup_file(folder / "logs" / "dca.log") is None
        assert not (folder / "logs").exists()
    finally:
        folder.chmod(0o755)


def test_a_record_not_made_here_is_redacted_by_our_handlers_too(log_file):
    # e.g. one sent from another process through a socket or queue, rebuilt with makeLogRecord
    record = logging.makeLogRecord({"name": "ibind.remote", "levelno": logging.WARNING, "levelname": "WARNING",
                                    "msg": "password=%s", "args": (SECRETS["ibkr password"],)})
    for handler in logs.our_handlers():
        handler.handle(record)
    text = written(log_file)
    assert SECRETS["ibkr password"] not in text and "password=****" in text
