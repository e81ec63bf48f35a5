"""The `dca` command: the engine's operations from a terminal, human tables or --json.

Exit codes: 0 all good; 1 something failed or an Active row is invalid; 2 could not run
(bad configuration, unreadable plan, bad arguments) with a message saying what to fix.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sqlite3
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from dca import clock_guard, logs
from dca.bootstrap import Services, build
from dca.domain import ParsedPlan, format_money
from dca.errors import DcaError
from dca.queries import next_executions
from dca.schedule_rules import NEW_YORK
from dca.settings import load_settings

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
SIMULATED_BANNER = "SIMULATED broker: no real orders, no real money."


class UsageError(DcaError):
    """A command-line value is wrong; exit 2."""


def parse_now(text: str) -> datetime:
    """ISO 8601; a time without an offset is New York time. A New York wall-clock time
    that the change to or from daylight saving time skips or repeats is refused, rather
    than guessed: the person gives an offset, which says exactly which moment they mean."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now '{text}' is not an ISO 8601 time like 2026-12-01T09:00 or 2026-12-01T09:00-05:00") from None
    if value.tzinfo is not None:
        return value
    first, second = value.replace(tzinfo=NEW_YORK, fold=0), value.replace(tzinfo=NEW_YORK, fold=1)
    try:
        offsets = first.utcoffset(), second.utcoffset()
        back = first.astimezone(timezone.utc).astimezone(NEW_YORK).replace(tzinfo=None)
    except (OverflowError, ValueError):  # the edges of year 1 and 9999: the range check refuses them
        return first
    if offsets[0] == offsets[1]:
        return first
    stamp = f"{value:%Y-%m-%dT%H:%M}"
    if back != value:
        raise UsageError(
            f"--now {text} does not exist in New York: the clocks jump forward an hour that night "
            f"(from {first:%Z} to {second:%Z}); give a time that exists, e.g. {value + timedelta(hours=1):%Y-%m-%dT%H:%M}, "
            f"or an explicit offset, e.g. {stamp}{_offset(first)}")
    raise UsageError(
        f"--now {text} happens twice in New York: the clocks go back an hour that night; give an explicit "
        f"offset, {stamp}{_offset(first)} for the first ({first:%Z}) or {stamp}{_offset(second)} for the "
        f"second ({second:%Z})")


def _offset(moment: datetime) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} '{text}' is not a date like 2026-12-01") from None


# -- output helpers ------------------------------------------------------------------------


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def emit(args, payload: Any, human: Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(human())


def issues_text(plan: ParsedPlan) -> str:
    return "\n".join(
        f"{'ERROR' if i.is_error else 'warning'}: {i.message}" for i in plan.issues
    )


def plan_exit(plan: ParsedPlan) -> int:
    return EXIT_FAILED if plan.errors else EXIT_OK


# -- commands ------------------------------------------------------------------------------


def cmd_plan(args, services: Services) -> int:
    plan = services.plan_source.load()
    rows = [
        {"row": r.row_number, "row_id": r.row_id, "status": str(r.status), "symbol": r.symbol,
         "amount_usd": str(r.amount), "frequency": str(r.frequency), "log": r.log}
        for r in plan.rows
    ]
    payload = {"source": services.plan_source.description, "rows": rows,
               "errors": [i.as_dict() for i in plan.errors], "warnings": [i.as_dict() for i in plan.warnings]}

    def human():
        text = f"Plan: {services.plan_source.description}\n"
        text += table(rows, ["row", "status", "symbol", "amount_usd", "frequency", "row_id", "log"])
        return text + ("\n\n" + issues_text(plan) if plan.issues else "")

    emit(args, payload, human)
    return plan_exit(plan)


def cmd_calendar(args, services: Services) -> int:
    now = datetime.now(NEW_YORK)
    today = now.date()
    start = parse_day(args.start, "--start") if args.start else today
    end = parse_day(args.end, "--end") if args.end else start + timedelta(days=30)
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    if (end - start).days > 3660:
        raise UsageError("the range is longer than ten years; choose a shorter one")
    plan = services.plan_source.load()
    outlook = next_executions(plan, services.schedule, services.ledger, now, start, end, services.engine.options)
    if args.json:
        print(outlook.as_json())  # one item per line; a year of 1,000 rows is 250k items
    else:
        items = outlook.as_dicts()
        for row, item in zip(items, outlook.items):
            row["state"] = item.label
        print(table(items, ["scheduled_at", "symbol", "amount_usd", "frequency", "row", "state", "row_id"]))
        coming = outlook.to_come()
        print(f"Still to come from {start} to {end}: {len(coming)} executions, {format_money(outlook.total)}")
    if plan.errors:
        print(issues_text(plan), file=sys.stderr)
    return plan_exit(plan)


def cmd_run(args, services: Services) -> int:
    now = parse_now(args.now) if args.now else datetime.now(NEW_YORK)
    if args.now and not args.dry_run and getattr(services.broker, "live_possible", False):
        raise UsageError(f"--now is refused with {services.broker.name}: time travel places real orders "
                         "only on a paper account (DU…); use --dry-run, or a paper account")
    if args.now and not args.dry_run:
        clock_guard.check_range(now)  # so a time out of range is not first met with a warning
        if (warning := clock_guard.ahead_warning(now)) is not None:
            print(f"dca: warning: {warning}", file=sys.stderr)
    report = services.engine.run(now, dry_run=args.dry_run)
    payload = report.as_dict()

    def human():
        title = f"{'Dry run' if report.dry_run else 'Run'} as of {now.astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z}"
        lines = [SIMULATED_BANNER] if report.simulated else [f"Broker: {report.broker}"]
        lines.append(title + ("  (nothing is recorded or ordered)" if report.dry_run else ""))
        rows = [
            {**e, "scheduled": e["scheduled_at"][:16].replace("T", " "), "late": "late" if e["late"] else "",
             "ref": e["order_ref"] or ""}
            for e in payload["executions"]
        ]
        lines.append(table(rows, ["symbol", "scheduled", "status", "late", "quantity", "price", "cost",
                                  "carry", "ref", "message"]))
        for d in report.deferred:
            lines.append(f"DEFERRED: row {d['row']} {d['symbol']}: {d['message']}")
        for issue in report.errors + report.warnings:
            lines.append(f"{'ERROR' if issue.is_error else 'warning'}: {issue.message}")
        s = payload["summary"]
        counts = ", ".join(f"{v} {k}" for k, v in s["counts"].items()) or "nothing due"
        lines.append(f"Summary: {counts}; total ${s['total_spent']}")
        for kind, d in payload["delivery"].items():
            if d.get("error"):
                lines.append(f"{kind}: {d['waiting']} waiting to be delivered ({d['error']})")
        return "\n".join(lines)

    emit(args, payload, human)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_history(args, services: Services) -> int:
    items = [e.as_dict() for e in services.ledger.history(args.limit)]
    if args.csv:
        out = sys.stdout if args.csv == "-" else _open_export(Path(args.csv))
        try:
            columns = list(items[0]) if items else ["row_id", "symbol", "scheduled_at", "status"]
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(items)
        finally:
            if out is not sys.stdout:
                out.close()
        if args.csv != "-":
            print(f"wrote {len(items)} executions to {args.csv}", file=sys.stderr)
        return EXIT_OK
    def human():
        head = [SIMULATED_BANNER] if any(e["simulated"] for e in items) else []
        return "\n".join(head + [table(
            [{**e, "scheduled": e["scheduled_at"][:16].replace("T", " "), "late": "late" if e["late"] else "",
              "simulated": "SIMULATED" if e["simulated"] else ""} for e in items],
            ["scheduled", "symbol", "status", "late", "quantity", "price", "cost", "carry", "order_ref",
             "recorded_at", "simulated", "message"])])

    emit(args, items, human)
    return EXIT_OK


def _open_export(path: Path):
    """The --csv file, opened for writing, or a UsageError saying what is wrong with it."""
    folder = path.parent
    if path.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"the folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
    else:
        try:
            return open(path, "w", newline="", encoding="utf-8")
        except OSError as e:
            problem = (e.strerror or str(e)).lower()
    raise UsageError(f"--csv {path} cannot be written: {problem}; give a file in a folder that exists "
                     "and you may write, or '-' for the screen")


def cmd_orders(args, services: Services) -> int:
    broker = services.broker
    items = [o.as_dict() for o in broker.orders()]

    def human():
        head = [SIMULATED_BANNER] if broker.simulated else []
        return "\n".join(head + [f"Orders at {broker.name}:", table(
            items, ["placed_at", "order_ref", "symbol", "quantity", "state", "broker_status", "filled_quantity", "avg_price", "broker_order_id", "message"])])

    emit(args, items, human)
    return EXIT_OK


def worker_status(beat: dict | None, now: datetime) -> dict | None:
    """The worker's heartbeat, with whether it looks alive (a tick in the last 3 minutes)."""
    if beat is None:
        return None
    tick = datetime.fromisoformat(beat["last_tick"]) if beat.get("last_tick") else None
    age = None if tick is None else (now - tick).total_seconds()
    alive = beat.get("state") != "stopped" and age is not None and age < 180
    return {**beat, "alive": alive, "seconds_since_tick": None if age is None else int(age)}


def worker_lines(worker: dict | None) -> list[str]:
    if worker is None:
        return ["Worker:    never run on this ledger (start it with `dca worker`, see `dca setup`)"]
    if worker["alive"]:
        state = f"running (pid {worker['pid']} on {worker['host']}, {worker['state']}), last tick {worker['last_tick']}"
    elif worker.get("state") == "stopped":
        state = f"stopped at {worker['last_tick']}"
    else:
        state = f"NOT RUNNING? no heartbeat since {worker['last_tick']} (pid {worker['pid']} on {worker['host']})"
    lines = [f"Worker:    {state}",
             f"           last run {worker['last_run'] or 'never'}"
             + (f" ({worker['last_run_result']})" if worker.get("last_run_result") else "")]
    if worker["alive"] and worker.get("next_run"):
        lines.append(f"           next run {worker['next_run']}")
    if worker.get("last_error"):
        lines.append(f"           last error at {worker['last_error_at']}: {worker['last_error']}")
    return lines


def cmd_status(args, services: Services) -> int:
    settings = services.settings
    now = datetime.now(NEW_YORK)
    payload: dict[str, Any] = {
        "simulated": settings.simulated,
        "broker": services.broker.name,
        "plan": services.plan_source.description,
        "ledger": str(settings.db_path),
        "notifier": services.notifier.description,
        "settings": settings.describe(),
        "sources": dict(settings.sources),
        "last_run": services.ledger.last_run(),
        "pending_deliveries": {k: len(services.ledger.undelivered(k)) for k in ("log", "notify")},
        "notifications": _notification_health(services),
        "worker": worker_status(services.ledger.heartbeat(), now),
    }
    code = EXIT_OK
    try:
        plan = services.plan_source.load()
        outlook = next_executions(plan, services.schedule, services.ledger, now, now.date(),
                                  now.date() + timedelta(days=31), services.engine.options)
        done_today = [i for i in outlook.done() if i.scheduled_at.date() == now.date()]
        coming = outlook.to_come()[:10]
        payload["next_executions"] = outlook.as_dicts(coming)
        payload["done_today"] = outlook.as_dicts(done_today)
        payload["plan_errors"] = [i.as_dict() for i in plan.errors]
    except DcaError as error:
        payload["next_executions"], payload["plan_errors"] = [], [{"row": None, "message": str(error)}]
        payload["done_today"] = []
        coming = done_today = []
        code = EXIT_FAILED
    columns = ["scheduled_at", "symbol", "amount_usd", "frequency", "row", "state"]

    def human():
        lines = [SIMULATED_BANNER] if settings.simulated else []
        lines += [f"Broker:    {payload['broker']}", f"Plan:      {payload['plan']}",
                  f"Ledger:    {payload['ledger']}", f"Notifier:  {payload['notifier']}",
                  f"Config:    {settings.config_file or '(none: defaults and environment)'}"]
        lines.append("Settings:  " + ", ".join(f"{k}={v}" for k, v in payload["settings"].items()
                                               if k not in ("home", "plan_path", "db_path", "config_file")))
        last = payload["last_run"]
        lines.append(f"Last run:  {last['as_of'] + ' ' + json.dumps(last['summary']) if last else 'never'}")
        lines += worker_lines(payload["worker"])
        waiting = payload["pending_deliveries"]
        if any(waiting.values()):
            lines.append(f"Waiting:   {waiting['log']} Log writes, {waiting['notify']} notifications")
        health = payload["notifications"]
        for problem in health["problems"]:
            lines.append(f"NOTIFIER PROBLEM since {problem['since']}: {problem['body']}")
        if health["dead_letters"]:
            lines.append(f"Dead letters: {health['dead_letters']} notification(s) given up, latest "
                         f"{health['latest_dead_letter']['given_up_at']}: {health['latest_dead_letter']['last_error']}; "
                         "once fixed, `dca notify-test --resend-dead-letters` sends them again")
        if payload["done_today"]:
            lines.append("Done today:")
            lines.append(table([{**i.as_dict(), "state": i.label} for i in done_today], columns))
        lines.append("Next executions:")
        lines.append(table([{**i.as_dict(), "state": i.label} for i in coming], columns))
        lines += [f"ERROR: {e['message']}" for e in payload["plan_errors"]]
        return "\n".join(lines)

    emit(args, payload, human)
    return code


def _notification_health(services: Services) -> dict:
    """Dead letters and problems with the notifier itself, for `dca status`."""
    try:
        dead = services.ledger.given_up("notify")
        # Only the notifier in use: a webhook refused before the URL was changed is history.
        notifier = services.notifier
        key = f"gone:{getattr(notifier, 'identity', notifier.description)}"
        problems = [p for k, p in services.ledger.notify_problems().items() if k == key]
    except sqlite3.Error:  # a read-only ledger of an older version has no such tables
        dead, problems = [], []
    latest = dead[-1] if dead else None
    return {"dead_letters": len(dead), "latest_dead_letter": latest, "problems": problems}


def cmd_notify_test(args, services: Services) -> int:
    """Send a test message through the configured notifier and say whether it arrived."""
    from dca.delivery import account_label, deliver_notifications, send_test_notification

    notifier, account = services.notifier, account_label(services.broker)
    error = send_test_notification(notifier, account, datetime.now(NEW_YORK))
    payload: dict[str, Any] = {"notifier": notifier.description, "account": account, "arrived": error is None,
                               "error": None if error is None else str(error)}
    if error is None and not services.ledger.read_only:
        # It works (again): deliveries resume, and dead letters are sent again if asked.
        services.ledger.set_notify_problem(f"gone:{getattr(notifier, 'identity', notifier.description)}", None)
        if args.resend_dead_letters:
            payload["requeued"] = services.ledger.requeue_given_up("notify")
            payload["delivery"] = deliver_notifications(services.ledger, notifier, account)

    def human():
        if error is not None:
            return (f"The test message did NOT arrive at {notifier.description}: {error}")
        text = f"The test message arrived at {notifier.description} ({account})."
        if "requeued" in payload:
            d = payload["delivery"]
            text += (f"\n{payload['requeued']} dead letter(s) queued again: {d['delivered']} delivered, "
                     f"{d['waiting']} waiting" + (f" ({d['error']})" if d.get("error") else ""))
        return text

    emit(args, payload, human)
    return EXIT_OK if error is None else EXIT_FAILED


def cmd_worker(args, services: Services) -> int:
    """The unattended worker (dca/worker.py): runs until SIGTERM or Ctrl-C."""
    from dca.worker import serve

    logs.setup_console(verbose=True)  # a service's log is its only voice: INFO on the console too
    return serve(services)


def cmd_setup(args, services: Services) -> int:
    from dca.deploy import setup

    return setup(services, yes=args.yes, method=args.method, start=not args.no_start,
                 unit_dir=args.unit_dir and Path(args.unit_dir))


def cmd_confirm_row(args, services: Services) -> int:
    """Release a row held as a possible re-identified copy of an old one."""
    plan = services.plan_source.load()
    row = next((r for r in plan.rows if r.row_id == args.row_id), None)
    if row is None:
        raise UsageError(f"no valid row has ID {args.row_id} in {services.plan_source.description}")
    services.ledger.confirm_row(args.row_id)
    print(f"Row {row.row_number} ({row.symbol}, ID {row.row_id}) is confirmed as a new row; "
          "the next run buys it when it is due.")
    return EXIT_OK


def cmd_sheet(args, services: Services) -> int:
    source = services.plan_source
    if not hasattr(source, "init"):
        raise UsageError(f"the plan is {source.description}, not a Google Sheet; put the sheet's address in "
                         "DCA_PLAN or --plan")
    done = source.init()
    emit(args, {"sheet": source.description, "done": done},
         lambda: f"{source.description}:\n" + "\n".join(f"- {line}" for line in done))
    return EXIT_OK


def cmd_api(args, services: Services) -> int:
    """Serve the HTTP API until interrupted."""
    from dca.api import LOOPBACK, create_app, ensure_token, serve

    token, token_file = ensure_token(services.settings.api_token, services.settings.home)
    if services.broker.simulated:
        print(SIMULATED_BANNER)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"dca API on http://{host}:{args.port} (docs at /docs{'' if args.host in LOOPBACK else ': off, not on localhost'})")
    if token_file is not None:
        # The path, never the token: a terminal's scrollback is not a safe place for it.
        print(f"Bearer token: in {token_file} (readable only by you), e.g. "
              f"curl -H \"Authorization: Bearer $(cat {token_file})\" http://{host}:{args.port}/recurring/status")
    else:
        print("Bearer token: DCA_API_TOKEN")
    if args.host not in LOOPBACK:
        print(f"dca: warning: listening on {args.host}, not only this machine; put it behind TLS", file=sys.stderr)
    sys.stdout.flush()
    serve(create_app(services, token, docs=args.host in LOOPBACK), args.host, args.port)
    return EXIT_OK


# -- wiring --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="settings file (default: $DCA_CONFIG, else none)")
    common.add_argument("--plan", help="plan CSV file or Google Sheet address (default: $DCA_PLAN, else $DCA_HOME/plan.csv)")
    common.add_argument("--db", help="ledger SQLite file (default: $DCA_DB, else $DCA_HOME/ledger.sqlite3)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--broker", help="simulated or ibkr (default: $DCA_BROKER, else simulated)")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")

    parser = argparse.ArgumentParser(prog="dca", description="Recurring investments (dollar-cost averaging).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("plan", parents=[common], help="parsed plan rows and per-row errors").set_defaults(func=cmd_plan)
    p = sub.add_parser("calendar", parents=[common], help="upcoming executions in a date range")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default today)")
    p.add_argument("--end", help="last day, inclusive (default start + 30 days)")
    p.set_defaults(func=cmd_calendar)
    p = sub.add_parser("run", parents=[common], help="buy what is due, once")
    p.add_argument("--now", help="run as of this ISO 8601 time (no offset = New York); default: now")
    p.add_argument("--dry-run", action="store_true", help="show what a run would do; record and order nothing")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("history", parents=[common], help="recorded executions, newest first")
    p.add_argument("--csv", metavar="FILE", help="export as CSV to FILE ('-' for stdout)")
    p.add_argument("--limit", type=int, help="at most this many")
    p.set_defaults(func=cmd_history)
    sub.add_parser("orders", parents=[common], help="orders as the broker reports them").set_defaults(func=cmd_orders)
    p = sub.add_parser("confirm-row", parents=[common], help="confirm that a row held as a possible copy is new")
    p.add_argument("row_id", help="the row's ID, as the hold's message gives it")
    p.set_defaults(func=cmd_confirm_row)
    sub.add_parser("status", parents=[common], help="configuration in effect, last run, next executions").set_defaults(func=cmd_status)
    p = sub.add_parser("sheet", parents=[common], help="set up the Google Sheet that holds the plan")
    p.add_argument("action", choices=["init"], help="init: header row, dropdowns and a History worksheet; "
                   "on a sheet already set up, only what is missing")
    p.set_defaults(func=cmd_sheet)
    p = sub.add_parser("api", parents=[common], help="serve the HTTP API (bearer token; TradingView alerts)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.set_defaults(func=cmd_api)
    p = sub.add_parser("notify-test", parents=[common], help="send a test notification and say whether it arrived")
    p.add_argument("--resend-dead-letters", action="store_true",
                   help="when it arrives, send the notifications given up earlier again")
    p.set_defaults(func=cmd_notify_test)
    sub.add_parser("worker", parents=[common], help="run unattended: on start, every trading morning, retries "
                   "(stop with SIGTERM or Ctrl-C)").set_defaults(func=cmd_worker)
    p = sub.add_parser("setup", parents=[common], help="check the connections and install the worker as a service")
    p.add_argument("--yes", action="store_true", help="take every default without asking")
    p.add_argument("--method", choices=["systemd", "launchd", "cron", "none"],
                   help="how to install (default: systemd on Linux, launchd on macOS, else a crontab line)")
    p.add_argument("--unit-dir", help="where to write the unit or plist (default: the user's own folder)")
    p.add_argument("--no-start", action="store_true", help="write the files, print the commands, start nothing")
    p.set_defaults(func=cmd_setup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup_console(args.verbose)  # redacted, like every log line
    try:
        settings = load_settings(args.config, overrides={
            "plan_path": args.plan, "db_path": args.db and Path(args.db),  # --plan may be a sheet's address
            "broker": args.broker})
        logs.register_settings(settings)
        # The log file from the start when the data folder exists (the settings in effect
        # are its first line), else once build() has made it; never creating it here.
        logged = logs.setup_file(settings.log_file, settings.log_level)
        services = build(settings)
        if logged is None:
            logs.setup_file(settings.log_file, settings.log_level)
        return args.func(args, services)
    except DcaError as error:
        print(f"dca: error: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except BrokenPipeError:
        return EXIT_OK
    except (OSError, sqlite3.Error) as error:
        # The surroundings failed in a way no check foresaw: one line, not a traceback
        # (-v logs the traceback). The folder, not the file: it may be a temp file.
        logging.getLogger(__name__).info("unexpected error from the surroundings", exc_info=True)
        where = getattr(error, "filename", None)
        place = f" in {Path(where).parent}" if where else ""
        what = getattr(error, "strerror", None) or str(error)
        print(f"dca: error: could not read or write a file{place} ({what.lower()}); check that the data "
              "folder (DCA_HOME) and the paths given exist and may be written", file=sys.stderr)
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
