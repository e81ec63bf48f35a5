"""`dca setup`: check the configuration, the plan, the broker and the notifier, then install
the worker as a service that survives reboots (a systemd user unit on Linux, a launchd
agent on macOS), or print a crontab line instead.

Interactive by default (each step asks, Enter takes the default); `--yes` takes every
default without asking, for scripts. Nothing is started without `systemctl`/`launchctl`
being named on screen first, and `--no-start` only writes the files and prints the
commands. The crontab is never edited: the line is printed for the person to add.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from dca.bootstrap import Services
from dca.errors import DcaError
from dca.schedule_rules import NEW_YORK

UNIT_NAME = "dca-worker"
PLIST_LABEL = "com.github.dca.worker"
METHODS = ("systemd", "launchd", "cron", "none")


class SetupAborted(DcaError):
    """The person said no, or there was no one to ask; exit 2."""


@dataclass
class Setup:
    services: Services
    yes: bool = False
    method: str | None = None
    unit_dir: Path | None = None
    start: bool = True
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print
    run: Callable[[Sequence[str]], object] = lambda cmd: subprocess.run(list(cmd), check=True)
    problems: list[str] = field(default_factory=list)

    # -- asking -------------------------------------------------------------------------------

    def confirm(self, question: str, default: bool = True) -> bool:
        if self.yes:
            return default
        hint = "[Y/n]" if default else "[y/N]"
        try:
            answer = self.ask(f"{question} {hint} ").strip().lower()
        except EOFError:
            raise SetupAborted("no answer (the input is closed); run `dca setup --yes` to take every "
                               "default without asking") from None
        return default if not answer else answer in ("y", "yes")

    # -- the checks ---------------------------------------------------------------------------

    def check(self, what: str, test: Callable[[], str]) -> None:
        try:
            detail = test()
        except Exception as error:  # a check reports; it never stops the wizard
            self.problems.append(f"{what}: {error}")
            self.say(f"  [!!] {what}: {error}")
        else:
            self.say(f"  [ok] {what}: {detail}")

    def checks(self) -> None:
        s = self.services
        self.say("Checking the configuration and the connections:")
        self.check("configuration", lambda: f"{s.settings.config_file or 'defaults and environment'}; "
                   f"data in {s.settings.home}")
        self.check("plan", self._check_plan)
        self.check("broker", self._check_broker)
        if self.confirm("Send a test notification?"):
            self.check("notifier", self._check_notifier)

    def _check_plan(self) -> str:
        plan = self.services.plan_source.load()
        if plan.errors:
            raise DcaError(f"{self.services.plan_source.description}: {len(plan.errors)} row error(s), e.g. "
                           f"{plan.errors[0].message} (see `dca plan`)")
        return f"{self.services.plan_source.description}, {len(plan.active_rows)} Active row(s)"

    def _check_broker(self) -> str:
        broker = self.services.broker
        readiness = broker.readiness(datetime.now(NEW_YORK))
        if not readiness.ready:
            url = getattr(broker, "login_url", None)
            raise DcaError(f"{broker.name} is not ready: {readiness.message}"
                           + (f" (log in at {url}; IBKR sessions need a daily browser login)" if url else ""))
        return f"{broker.name}, ready" + (" (SIMULATED: no real orders, no real money)" if broker.simulated else "")

    def _check_notifier(self) -> str:
        from dca.delivery import account_label, send_test_notification

        notifier = self.services.notifier
        error = send_test_notification(notifier, account_label(self.services.broker), datetime.now(NEW_YORK))
        if error is not None:
            raise DcaError(f"the test message did not arrive at {notifier.description}: {error}")
        return f"{notifier.description}: test message arrived"

    # -- installing ---------------------------------------------------------------------------

    def default_method(self) -> str:
        system = platform.system()
        if system == "Linux" and shutil.which("systemctl"):
            return "systemd"
        if system == "Darwin":
            return "launchd"
        return "cron"

    def command(self) -> list[str]:
        """How the service starts the worker: this Python, this package, these settings."""
        cmd = [sys.executable, "-m", "dca.worker"]
        if self.services.settings.config_file:
            cmd += ["--config", str(Path(self.services.settings.config_file).resolve())]
        return cmd

    def environment(self) -> dict[str, str]:
        """Where the data is, so the service finds the same ledger as the person's commands.
        Secrets are not copied: the service starts in this folder, so it reads the same .env."""
        settings = self.services.settings
        env = {"DCA_HOME": str(Path(settings.home).resolve())}
        for name, variable in (("plan_path", "DCA_PLAN"), ("db_path", "DCA_DB")):
            if settings.sources.get(name):
                env[variable] = str(Path(getattr(settings, name)).resolve())
        return env

    def install(self) -> Path | None:
        method = self.method or self.default_method()
        if method not in METHODS:
            raise SetupAborted(f"--method {method}: choose from {', '.join(METHODS)}")
        if method == "none":
            self.say("Not installing a service (--method none); start the worker with `dca worker`.")
            return None
        if not self.confirm(f"Install the worker as a {method} service?"):
            self.say("Not installed. Start it by hand with `dca worker`.")
            return None
        return {"systemd": self._systemd, "launchd": self._launchd, "cron": self._cron}[method]()

    def _systemd(self) -> Path:
        folder = self.unit_dir or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
        path = folder / f"{UNIT_NAME}.service"
        _write(path, systemd_unit(self.command(), self.environment(), Path.cwd()))
        self.say(f"Wrote {path}")
        commands = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", UNIT_NAME]]
        self._start(commands)
        self.say(f"Logs: journalctl --user -u {UNIT_NAME} -f")
        self.say(f"Stop: systemctl --user stop {UNIT_NAME} (and `disable` to keep it from starting at login)")
        self.say("To keep it running while you are logged out: loginctl enable-linger $USER")
        return path

    def _launchd(self) -> Path:
        folder = self.unit_dir or Path.home() / "Library" / "LaunchAgents"
        path = folder / f"{PLIST_LABEL}.plist"
        log = Path(self.services.settings.home).resolve() / "worker.log"
        _write(path, launchd_plist(self.command(), self.environment(), Path.cwd(), log))
        self.say(f"Wrote {path}")
        self._start([["launchctl", "bootstrap", f"gui/{os.getuid()}", str(path)]])
        self.say(f"Logs: {log}")
        self.say(f"Stop: launchctl bootout gui/{os.getuid()}/{PLIST_LABEL}")
        return path

    def _cron(self) -> None:
        log = Path(self.services.settings.home).resolve() / "worker.log"
        self.say("Add this line to your crontab (`crontab -e`); it starts the worker at every boot:")
        self.say("  " + crontab_line(self.command(), self.environment(), Path.cwd(), log))
        self.say(f"Logs: {log}. Stop: `dca status` shows its pid; `kill <pid>` stops it, and remove the line.")
        return None

    def _start(self, commands: list[list[str]]) -> None:
        shown = "; ".join(shlex.join(c) for c in commands)
        if not self.start:
            self.say(f"Not started (--no-start). To start it: {shown}")
            return
        if not self.confirm(f"Start it now ({shown})?"):
            self.say(f"Not started. To start it: {shown}")
            return
        for command in commands:
            try:
                self.run(command)
            except (OSError, subprocess.CalledProcessError) as error:
                raise SetupAborted(f"`{shlex.join(command)}` failed ({error}); the files are written, so fix "
                                   f"that and start it yourself: {shown}") from None
        self.say("Started. `dca status` shows its heartbeat.")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def systemd_unit(command: Sequence[str], env: dict[str, str], workdir: Path) -> str:
    lines = [
        "[Unit]",
        "Description=dca recurring-investment worker",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={workdir}",
        *(f'Environment="{k}={v}"' for k, v in env.items()),
        f"ExecStart={shlex.join(command)}",
        # SIGTERM lets the run in flight finish; give it time before systemd kills it.
        "KillSignal=SIGTERM",
        "TimeoutStopSec=120",
        # Exit 2 is "could not run" (bad configuration, another worker): restarting won't help.
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "RestartSec=30",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(command: Sequence[str], env: dict[str, str], workdir: Path, log: Path) -> str:
    from xml.sax.saxutils import escape

    args = "".join(f"\n        <string>{escape(a)}</string>" for a in command)
    envs = "".join(f"\n        <key>{escape(k)}</key><string>{escape(v)}</string>" for k, v in env.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key><string>{PLIST_LABEL}</string>
    <key>ProgramArguments</key>
    <array>{args}
    </array>
    <key>EnvironmentVariables</key>
    <dict>{envs}
    </dict>
    <key>WorkingDirectory</key><string>{escape(str(workdir))}</string>
    <key>RunAtLoad</key><true/>
    <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
    <key>StandardOutPath</key><string>{escape(str(log))}</string>
    <key>StandardErrorPath</key><string>{escape(str(log))}</string>
</dict>
</plist>
"""


def crontab_line(command: Sequence[str], env: dict[str, str], workdir: Path, log: Path) -> str:
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (f"@reboot cd {shlex.quote(str(workdir))} && {assignments} {shlex.join(command)} "
            f">> {shlex.quote(str(log))} 2>&1")


def setup(services: Services, **options) -> int:
    wizard = Setup(services, **options)
    wizard.say("dca setup: checks, then installs the worker so that it runs after every reboot.")
    wizard.checks()
    wizard.install()
    if wizard.problems:
        wizard.say(f"{len(wizard.problems)} check(s) need attention (above); the worker retries and notifies "
                   "while they last.")
        return 1
    return 0
