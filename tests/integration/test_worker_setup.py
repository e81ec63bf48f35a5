"""`dca setup` as a person runs it: the checks, then the service files. Nothing is ever
installed or started here: files go to a tmp folder and systemctl/launchctl are recorded."""

from __future__ import annotations

import io
import plistlib
import sys

import pytest

from dca import deploy
from dca.cli import main


@pytest.fixture
def ran(monkeypatch):
    """The commands setup would run (systemctl, launchctl), recorded instead of run."""
    calls = []
    monkeypatch.setattr(deploy.subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))
    return calls


def dca(capsys, *args, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_setup_yes_checks_everything_and_writes_a_systemd_user_unit(capsys, tmp_path, ran):
    units = tmp_path / "units"
    code, out, _ = dca(capsys, "setup", "--yes", "--method", "systemd", "--unit-dir", str(units), "--no-start")
    assert code == 0
    for line in ["[ok] configuration: defaults and environment", "[ok] plan: CSV file",
                 "[ok] broker: SIMULATED broker, ready (SIMULATED: no real orders, no real money)",
                 "[ok] notifier: notification file", "Logs: journalctl --user -u dca-worker -f",
                 "Stop: systemctl --user stop dca-worker",
                 "Not started (--no-start). To start it: systemctl --user daemon-reload; "
                 "systemctl --user enable --now dca-worker"]:
        assert line in out
    unit = (units / "dca-worker.service").read_text()
    assert f"ExecStart={sys.executable} -m dca.worker\n" in unit
    assert f'Environment="DCA_HOME={tmp_path / "home"}"' in unit
    assert f"WorkingDirectory={tmp_path}\n" in unit  # where .env (the secrets) is read from
    assert "Restart=on-failure" in unit and "RestartPreventExitStatus=2" in unit and "WantedBy=default.target" in unit
    assert "Test message from dca" in (tmp_path / "home" / "notifications.log").read_text()
    assert ran == []


def test_setup_asks_each_step_and_starts_the_service_only_when_told(capsys, tmp_path, ran, monkeypatch):
    units = tmp_path / "units"
    # No test notification; install: yes; start: yes.
    code, out, _ = dca(capsys, "setup", "--method", "systemd", "--unit-dir", str(units), stdin="n\n\ny\n",
                       monkeypatch=monkeypatch)
    assert code == 0
    assert ran == [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "dca-worker"]]
    assert "Started. `dca status` shows its heartbeat." in out
    assert not (tmp_path / "home" / "notifications.log").exists()
    assert (units / "dca-worker.service").exists()


def test_setup_says_no_and_nothing_is_installed(capsys, tmp_path, ran, monkeypatch):
    units = tmp_path / "units"
    code, out, _ = dca(capsys, "setup", "--method", "systemd", "--unit-dir", str(units), stdin="n\nn\n",
                       monkeypatch=monkeypatch)
    assert code == 0 and "Not installed. Start it by hand with `dca worker`." in out
    assert not units.exists() and ran == []


def test_setup_without_anyone_to_answer_stops_and_points_at_yes(capsys, tmp_path, ran, monkeypatch):
    code, _, err = dca(capsys, "setup", "--method", "systemd", "--unit-dir", str(tmp_path / "u"), stdin="",
                       monkeypatch=monkeypatch)
    assert code == 2 and "dca setup --yes" in err
    assert ran == []


def test_setup_writes_a_launchd_agent(capsys, tmp_path, ran):
    agents = tmp_path / "agents"
    code, out, _ = dca(capsys, "setup", "--yes", "--method", "launchd", "--unit-dir", str(agents), "--no-start")
    assert code == 0
    plist = plistlib.loads((agents / "com.github.dca.worker.plist").read_bytes())
    assert plist["ProgramArguments"] == [sys.executable, "-m", "dca.worker"]
    assert plist["EnvironmentVariables"] == {"DCA_HOME": str(tmp_path / "home")}
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"] == str(tmp_path / "home" / "worker.log")
    assert "Logs: " + str(tmp_path / "home" / "worker.log") in out
    assert ran == []


def test_setup_prints_a_crontab_line_and_edits_no_crontab(capsys, tmp_path, ran):
    code, out, _ = dca(capsys, "setup", "--yes", "--method", "cron")
    assert code == 0
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith("@reboot"))
    assert line == (f"@reboot cd {tmp_path} && DCA_HOME={tmp_path / 'home'} {sys.executable} -m dca.worker "
                    f">> {tmp_path / 'home' / 'worker.log'} 2>&1")
    assert ran == []


def test_setup_reports_a_broker_that_is_not_ready_and_still_installs(capsys, tmp_path, ran, monkeypatch):
    monkeypatch.setenv("DCA_SIM_FAULTS", "*=logged_out")
    units = tmp_path / "units"
    code, out, _ = dca(capsys, "setup", "--yes", "--method", "systemd", "--unit-dir", str(units), "--no-start")
    assert code == 1
    assert "[!!] broker: SIMULATED broker is not ready: the SIMULATED broker session is logged out" in out
    assert "1 check(s) need attention" in out
    assert (units / "dca-worker.service").exists()


def test_a_failing_systemctl_is_one_clear_error_not_a_traceback(capsys, tmp_path, monkeypatch):
    def missing(cmd, **kw):
        raise FileNotFoundError(2, "No such file or directory", cmd[0])

    monkeypatch.setattr(deploy.subprocess, "run", missing)
    code, _, err = dca(capsys, "setup", "--yes", "--method", "systemd", "--unit-dir", str(tmp_path / "u"))
    assert code == 2
    assert "`systemctl --user daemon-reload` failed" in err and "start it yourself: systemctl --user daemon-reload;" in err
    assert "Traceback" not in err and (tmp_path / "u" / "dca-worker.service").exists()
