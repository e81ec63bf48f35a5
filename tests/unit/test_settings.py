"""Settings: defaults < dca.toml < environment (.env below the real one) < flags; a bad
value fails naming the key; secrets never come from dca.toml and are never shown."""

from __future__ import annotations

import dataclasses
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dca.errors import ConfigError
from dca.settings import Settings, default_home, load_settings

WEBHOOK = "https://discord.com/api/webhooks/123456/s3cr3t-t0ken-value"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "data"


# -- defaults ---------------------------------------------------------------------------


def test_with_nothing_at_all_the_embedded_default_runs_under_dca_home(home):
    s = load_settings(environ={"DCA_HOME": str(home)}, dotenv=None)
    assert isinstance(s, Settings)
    assert s.home == home
    assert s.plan_path == home / "plan.csv"
    assert s.db_path == home / "ledger.sqlite3"
    assert s.sim_book_path == home / "simulated-broker.sqlite3"
    assert s.notify_file == home / "notifications.log"
    assert s.broker == "simulated" and s.simulated
    assert s.default_plan
    assert s.run_time == time(9, 0)
    assert s.grace == timedelta(minutes=5)
    assert s.max_lateness is None
    assert s.max_order_usd == Decimal("5000") and s.max_daily_usd == Decimal("10000")
    assert s.sim_fractional is False and dict(s.sim_faults) == {}
    assert s.config_file is None
    assert dict(s.sources) == {"home": "$DCA_HOME"}


def test_with_no_environment_at_all_home_is_the_fixed_per_user_place():
    s = load_settings(environ={}, dotenv=None)
    assert s.home == default_home()
    assert s.plan_path == default_home() / "plan.csv"
    assert s.simulated
    assert dict(s.sources) == {}


def test_load_settings_without_arguments_reads_the_process_environment(tmp_path):
    # conftest sets DCA_HOME to tmp_path / "home" and chdirs to tmp_path (no .env there).
    s = load_settings()
    assert s.home == tmp_path / "home"
    assert s.plan_path == tmp_path / "home" / "plan.csv"


def test_settings_are_frozen(home):
    s = load_settings(environ={"DCA_HOME": str(home)}, dotenv=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.broker = "ibkr"  # type: ignore[misc]


# -- layers -----------------------------------------------------------------------------

FULL_TOML = """
[data]
home = "{home}"

[plan]
path = "{home}/my-plan.csv"

[ledger]
path = "{home}/my-ledger.sqlite3"
lock_timeout_seconds = 60

[schedule]
run_time = "10:30"
grace_minutes = 15
max_lateness_minutes = 120

[guards]
max_order_usd = "$1,500"
max_daily_usd = 3000

[broker]
kind = "simulated"
fractional = true
book = "{home}/book.sqlite3"

[broker.faults]
AAPL = "reject"
spy = "timeout_after_accept:1"

[notify]
file = "{home}/notes.log"
"""


def test_toml_values_are_read_and_typed(tmp_path, home):
    config = write(tmp_path / "dca.toml", FULL_TOML.format(home=home))
    s = load_settings(config=config, environ={}, dotenv=None)
    assert s.home == home
    assert s.plan_path == home / "my-plan.csv" and not s.default_plan
    assert s.db_path == home / "my-ledger.sqlite3"
    assert s.lock_timeout_seconds == 60.0
    assert s.run_time == time(10, 30)
    assert s.grace == timedelta(minutes=15)
    assert s.max_lateness == timedelta(minutes=120)
    assert s.max_order_usd == Decimal("1500") and isinstance(s.max_order_usd, Decimal)
    assert s.max_daily_usd == Decimal("3000")
    assert s.sim_fractional is True
    assert s.sim_book_path == home / "book.sqlite3"
    assert dict(s.sim_faults) == {"AAPL": "reject", "SPY": "timeout_after_accept:1"}
    assert s.notify_file == home / "notes.log"
    assert s.config_file == config
    assert s.sources["run_time"] == f"{config} [schedule.run_time]"


def test_config_path_can_come_from_dca_config(tmp_path):
    config = write(tmp_path / "elsewhere.toml", '[schedule]\nrun_time = "11:00"\n')
    s = load_settings(environ={"DCA_CONFIG": str(config)}, dotenv=None)
    assert s.run_time == time(11, 0)
    assert s.config_file == config


def test_the_config_argument_beats_dca_config(tmp_path):
    flag = write(tmp_path / "flag.toml", '[schedule]\nrun_time = "11:00"\n')
    env = write(tmp_path / "env.toml", '[schedule]\nrun_time = "12:00"\n')
    s = load_settings(config=flag, environ={"DCA_CONFIG": str(env)}, dotenv=None)
    assert s.run_time == time(11, 0)


def test_the_environment_overrides_the_toml_file(tmp_path):
    config = write(tmp_path / "dca.toml", '[schedule]\nrun_time = "10:30"\ngrace_minutes = 15\n'
                   '[guards]\nmax_order_usd = 1500\n')
    s = load_settings(config=config, environ={"DCA_RUN_TIME": "08:15", "DCA_MAX_ORDER_USD": "250.50"}, dotenv=None)
    assert s.run_time == time(8, 15)
    assert s.max_order_usd == Decimal("250.50")
    assert s.grace == timedelta(minutes=15)  # not overridden: the file's value stands
    assert s.sources["run_time"] == "$DCA_RUN_TIME"
    assert s.sources["grace"].endswith("[schedule.grace_minutes]")


def test_an_empty_environment_variable_does_not_override_the_file(tmp_path):
    config = write(tmp_path / "dca.toml", '[schedule]\nrun_time = "10:30"\n')
    s = load_settings(config=config, environ={"DCA_RUN_TIME": ""}, dotenv=None)
    assert s.run_time == time(10, 30)


def test_flags_override_the_environment_and_the_file(tmp_path, home):
    config = write(tmp_path / "dca.toml", '[schedule]\nrun_time = "10:30"\n[plan]\npath = "from-file.csv"\n')
    s = load_settings(
        config=config,
        environ={"DCA_HOME": str(home), "DCA_RUN_TIME": "08:15", "DCA_PLAN": "from-env.csv", "DCA_SIM_FRACTIONAL": "no"},
        overrides={"run_time": "07:45", "plan_path": tmp_path / "from-flag.csv", "sim_fractional": True, "grace": None},
        dotenv=None,
    )
    assert s.run_time == time(7, 45)
    assert s.plan_path == tmp_path / "from-flag.csv"
    assert s.sim_fractional is True
    assert s.grace == timedelta(minutes=5)  # a flag left unset (None) changes nothing
    assert s.sources["run_time"] == "command line"


def test_dotenv_values_are_used(tmp_path, home):
    dotenv = write(tmp_path / "custom.env", f"# local settings\nDCA_HOME={home}\nexport DCA_RUN_TIME='10:05'\n"
                   'DCA_MAX_DAILY_USD="2,500"\n\n')
    s = load_settings(environ={}, dotenv=dotenv)
    assert s.home == home
    assert s.run_time == time(10, 5)
    assert s.max_daily_usd == Decimal("2500")


def test_the_real_environment_wins_over_dotenv(tmp_path):
    dotenv = write(tmp_path / ".env", "DCA_RUN_TIME=10:05\nDCA_GRACE_MINUTES=20\n")
    s = load_settings(environ={"DCA_RUN_TIME": "11:10"}, dotenv=dotenv)
    assert s.run_time == time(11, 10)
    assert s.grace == timedelta(minutes=20)


def test_dotenv_in_the_working_directory_is_read_by_default(tmp_path):
    write(tmp_path / ".env", "DCA_RUN_TIME=10:05\n")  # conftest chdirs to tmp_path
    assert load_settings(environ={}).run_time == time(10, 5)


def test_dotenv_values_override_the_toml_file(tmp_path):
    config = write(tmp_path / "dca.toml", '[schedule]\nrun_time = "10:30"\n')
    dotenv = write(tmp_path / ".env", f"DCA_CONFIG={config}\nDCA_GRACE_MINUTES=9\n")
    s = load_settings(environ={}, dotenv=dotenv)
    assert s.run_time == time(10, 30)  # DCA_CONFIG itself may come from .env
    assert s.grace == timedelta(minutes=9)


def test_a_malformed_dotenv_line_is_a_config_error_naming_the_line(tmp_path):
    dotenv = write(tmp_path / ".env", "DCA_RUN_TIME=10:05\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"line 2: expected KEY=VALUE"):
        load_settings(environ={}, dotenv=dotenv)


@pytest.mark.parametrize(
    "variable, value, field, expected",
    [
        ("DCA_MAX_LATENESS_MINUTES", "off", "max_lateness", None),
        ("DCA_MAX_LATENESS_MINUTES", "90", "max_lateness", timedelta(minutes=90)),
        ("DCA_SIM_FRACTIONAL", "yes", "sim_fractional", True),
        ("DCA_SIM_FRACTIONAL", "0", "sim_fractional", False),
        ("DCA_BROKER", " Simulated ", "broker", "simulated"),
        ("DCA_SIM_FAULTS", "aapl=reject, SPY=timeout_after_accept:1", "sim_faults",
         {"AAPL": "reject", "SPY": "timeout_after_accept:1"}),
        ("DCA_LOCK_TIMEOUT", "30", "lock_timeout_seconds", 30.0),
        ("DCA_MAX_ORDER_USD", "$1,000.50", "max_order_usd", Decimal("1000.50")),
    ],
)
def test_environment_values_are_parsed(variable, value, field, expected):
    s = load_settings(environ={variable: value}, dotenv=None)
    got = getattr(s, field)
    assert (dict(got) if field == "sim_faults" else got) == expected


# -- bad values fail naming the key -----------------------------------------------------


@pytest.mark.parametrize(
    "variable, value, reason",
    [
        ("DCA_RUN_TIME", "25:00", "time of day"),
        ("DCA_RUN_TIME", "9am", "time of day"),
        ("DCA_RUN_TIME", "09:60", "time of day"),
        ("DCA_GRACE_MINUTES", "-5", "negative"),
        ("DCA_GRACE_MINUTES", "abc", ""),
        ("DCA_MAX_LATENESS_MINUTES", "-1", "negative"),
        ("DCA_MAX_ORDER_USD", "-5", "positive"),
        ("DCA_MAX_ORDER_USD", "0", "positive"),
        ("DCA_MAX_ORDER_USD", "abc", "not an amount"),
        ("DCA_MAX_ORDER_USD", "NaN", "positive"),
        ("DCA_MAX_DAILY_USD", "Infinity", "positive"),
        ("DCA_BROKER", "robinhood", "robinhood"),
        ("DCA_SIM_FRACTIONAL", "maybe", "true or false"),
        ("DCA_SIM_FAULTS", "AAPL=explode", "unknown fault 'explode'"),
        ("DCA_LOCK_TIMEOUT", "-1", "negative"),
    ],
)
def test_a_bad_environment_value_is_a_config_error_naming_the_variable(variable, value, reason):
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={variable: value}, dotenv=None)
    message = str(raised.value)
    assert f"${variable}" in message
    assert reason in message


def test_an_unsupported_broker_lists_the_supported_ones():
    with pytest.raises(ConfigError, match=r"\$DCA_BROKER: 'robinhood' is not a broker.*choose from: simulated"):
        load_settings(environ={"DCA_BROKER": "robinhood"}, dotenv=None)


def test_an_unknown_fault_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"choose from: reject, unavailable"):
        load_settings(environ={"DCA_SIM_FAULTS": "AAPL=explode"}, dotenv=None)


@pytest.mark.parametrize("value", ["inf", "1e13"])
def test_an_unrepresentable_grace_is_a_config_error_not_a_crash(value):
    """timedelta(minutes=inf) raises OverflowError; the person must still be told which
    setting is wrong."""
    with pytest.raises(ConfigError, match=r"\$DCA_GRACE_MINUTES"):
        load_settings(environ={"DCA_GRACE_MINUTES": value}, dotenv=None)


def test_a_nan_lock_timeout_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\$DCA_LOCK_TIMEOUT"):
        load_settings(environ={"DCA_LOCK_TIMEOUT": "nan"}, dotenv=None)


def test_a_fault_without_a_symbol_says_what_to_write():
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"DCA_SIM_FAULTS": "reject"}, dotenv=None)
    message = str(raised.value)
    assert message.startswith("$DCA_SIM_FAULTS")
    # The fix is SYMBOL=fault; a bare Python unpacking error does not tell the person that.
    assert "=" in message.removeprefix("$DCA_SIM_FAULTS")


@pytest.mark.parametrize(
    "section, key, value, reason",
    [
        ("schedule", "run_time", '"25:00"', "time of day"),
        ("schedule", "run_time", "9", "time of day"),
        ("schedule", "grace_minutes", "-5", "negative"),
        ("guards", "max_order_usd", '"-5"', "positive"),
        ("guards", "max_order_usd", '"abc"', "not an amount"),
        ("broker", "kind", '"robinhood"', "robinhood"),
        ("broker", "fractional", '"sometimes"', "true or false"),
        ("broker", "faults", '"AAPL=explode"', "unknown fault"),
    ],
)
def test_a_bad_toml_value_is_a_config_error_naming_the_key(tmp_path, section, key, value, reason):
    config = write(tmp_path / "dca.toml", f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config=config, environ={}, dotenv=None)
    message = str(raised.value)
    assert f"[{section}.{key}]" in message
    assert str(config) in message
    assert reason in message


@pytest.mark.parametrize(
    "override, value",
    [("run_time", "25:00"), ("max_order_usd", "-5"), ("broker", "robinhood"), ("grace", "-1")],
)
def test_a_bad_flag_is_a_config_error_naming_the_setting(override, value):
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={}, overrides={override: value}, dotenv=None)
    message = str(raised.value)
    assert "command line" in message
    # "command line: ..." alone does not say which of the flags is wrong.
    assert override in message or override.replace("_", "-") in message


def test_a_broker_this_version_lacks_fails_on_the_broker_not_on_the_faults():
    with pytest.raises(ConfigError, match=r"\$DCA_BROKER"):
        load_settings(environ={"DCA_BROKER": "robinhood", "DCA_SIM_FAULTS": "AAPL=reject"}, dotenv=None)
    # With a real broker, the simulated broker's faults are what is wrong.
    with pytest.raises(ConfigError, match="only applies to the simulated broker"):
        load_settings(environ={"DCA_BROKER": "ibkr", "DCA_SIM_FAULTS": "AAPL=reject"}, dotenv=None)


# -- the file itself --------------------------------------------------------------------


def test_an_unknown_toml_key_is_a_config_error_listing_it(tmp_path):
    config = write(tmp_path / "dca.toml", '[schedule]\nrun_time = "10:30"\nrun_tme = "11:00"\n[extras]\ncolour = "blue"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config=config, environ={}, dotenv=None)
    message = str(raised.value)
    assert "unknown setting(s) extras.colour, schedule.run_tme" in message
    assert "schedule.run_time" in message  # the known ones are listed to pick from


@pytest.mark.parametrize(
    "section, key",
    [("notify", "webhook_url"), ("broker", "password"), ("broker", "api_key"), ("notify", "discord_token"),
     ("broker", "client_secret")],
)
def test_a_secret_in_dca_toml_is_refused_pointing_to_the_environment(tmp_path, section, key):
    config = write(tmp_path / "dca.toml", f'[{section}]\n{key} = "{WEBHOOK}"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config=config, environ={}, dotenv=None)
    message = str(raised.value)
    assert f"[{section}] {key}" in message
    assert "environment" in message and ".env" in message
    assert WEBHOOK not in message and "s3cr3t" not in message


def test_a_setting_outside_a_section_is_refused_without_echoing_its_value(tmp_path):
    config = write(tmp_path / "dca.toml", f'webhook_url = "{WEBHOOK}"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config=config, environ={}, dotenv=None)
    assert "webhook_url" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path):
    config = write(tmp_path / "dca.toml", "[schedule\nrun_time = 10:30\n")
    with pytest.raises(ConfigError, match="not valid TOML") as raised:
        load_settings(config=config, environ={}, dotenv=None)
    assert str(config) in str(raised.value)


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    config = tmp_path / "dca.toml"
    config.write_bytes('[plan]\npath = "C:/Users/Ren\xe9e/plan.csv"\n'.encode("cp1252"))
    with pytest.raises(ConfigError, match=str(config)):
        load_settings(config=config, environ={}, dotenv=None)


@pytest.mark.parametrize("via", ["argument", "DCA_CONFIG"])
def test_a_missing_config_file_is_a_config_error(tmp_path, via):
    missing = tmp_path / "nope.toml"
    kwargs = {"config": missing, "environ": {}} if via == "argument" else {"environ": {"DCA_CONFIG": str(missing)}}
    with pytest.raises(ConfigError, match=r"does not exist.*--config or \$DCA_CONFIG"):
        load_settings(dotenv=None, **kwargs)


def test_an_empty_config_file_gives_the_defaults(tmp_path, home):
    config = write(tmp_path / "dca.toml", "# nothing yet\n")
    s = load_settings(config=config, environ={"DCA_HOME": str(home)}, dotenv=None)
    assert s.plan_path == home / "plan.csv" and s.simulated
    assert s.config_file == config


# -- describing -------------------------------------------------------------------------


def test_describe_shows_what_is_in_effect_and_no_secret_values(tmp_path, home):
    dotenv = write(tmp_path / ".env", "DCA_IBKR_PASSWORD=hunter2-secret\n")
    s = load_settings(
        environ={"DCA_HOME": str(home), "DCA_DISCORD_WEBHOOK_URL": WEBHOOK, "DCA_RUN_TIME": "10:30",
                 "DCA_GRACE_MINUTES": "15"},
        dotenv=dotenv,
    )
    described = s.describe()
    assert described["run_time"] == "10:30"
    assert described["grace"] == "15 min"
    assert described["broker"] == "simulated"
    assert described["plan_path"] == str(home / "plan.csv")
    assert described["max_order_usd"] == "5000"
    assert "sources" not in described
    shown = repr(described) + repr(s) + repr(dict(s.sources))
    assert "s3cr3t" not in shown and WEBHOOK not in shown
    assert "hunter2" not in shown


def test_describe_is_plain_printable_data(home):
    s = load_settings(environ={"DCA_HOME": str(home), "DCA_SIM_FAULTS": "AAPL=reject"}, dotenv=None)
    described = s.describe()
    for value in described.values():
        assert value is None or isinstance(value, (str, int, float, bool, dict))
    assert described["sim_faults"] == {"AAPL": "reject"}


# -- unknown variables ------------------------------------------------------------------


@pytest.mark.parametrize("name,known", [
    ("DCA_MAX_ORDER", "DCA_MAX_ORDER_USD"),
    ("DCA_MAXDAILY_USD", "DCA_MAX_DAILY_USD"),
    ("DCA_RUNTIME", "DCA_RUN_TIME"),
    ("DCA_GRACE", "DCA_GRACE_MINUTES"),  # a known name's beginning
    ("DCA_DB_PATH", "DCA_DB"),
    ("DCA_HOMEDIR", "DCA_HOME"),
])
def test_an_unknown_variable_close_to_a_known_one_is_warned_about_with_the_match(caplog, home, name, known):
    s = load_settings(environ={"DCA_HOME": str(home), name: "7"}, dotenv=None)
    assert s.max_order_usd == Decimal("5000")  # ignored, as the warning says
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert f"{name} (in the environment or .env) is not a dca setting and is ignored; did you mean {known}?" \
        == record.getMessage()


def test_an_unknown_variable_with_no_close_match_is_warned_about_too(caplog, home):
    load_settings(environ={"DCA_HOME": str(home), "DCA_COLOUR": "blue"}, dotenv=None)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "DCA_COLOUR (in the environment or .env) is not a dca setting and is ignored; "
        "see README's configuration table for the known ones"]


def test_a_misspelt_variable_in_dotenv_is_warned_about_and_its_value_never_shown(caplog, tmp_path, home):
    dotenv = write(tmp_path / ".env", f"DCA_DISCORD_WEBHOOK={WEBHOOK}\n")
    load_settings(environ={"DCA_HOME": str(home)}, dotenv=dotenv)
    shown = " ".join(r.getMessage() for r in caplog.records)
    assert "DCA_DISCORD_WEBHOOK" in shown
    assert "s3cr3t" not in shown and "discord.com" not in shown


def test_known_variables_and_other_programs_variables_are_not_warned_about(caplog, tmp_path, home):
    config = write(tmp_path / "dca.toml", "")
    env = {"DCA_HOME": str(home), "DCA_CONFIG": str(config), "DCA_MAX_ORDER_USD": "100", "DCAX": "1",
           "PATH": "/bin", "XDG_DATA_HOME": str(tmp_path)}
    load_settings(environ=env, dotenv=None)
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_ibkr_settings_with_the_simulated_broker_are_said_to_reach_nothing(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="dca.settings"):
        s = load_settings(environ={"IBIND_USE_OAUTH": "true", "IBIND_ACCOUNT_ID": "DU999"}, dotenv=None)
    assert s.broker == "simulated"
    [warning] = [r.getMessage() for r in caplog.records if "simulated one" in r.getMessage()]
    assert "$IBIND_ACCOUNT_ID" in warning and "DCA_BROKER=ibkr" in warning and "DU999" not in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dca.settings"):
        load_settings(environ={"DCA_BROKER": "ibkr", "IBIND_ACCOUNT_ID": "DU999"}, dotenv=None)
        load_settings(environ={}, dotenv=None)
    assert not [r for r in caplog.records if "simulated one" in r.getMessage()]
