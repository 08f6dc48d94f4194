"""Configuration: defaults, typed parsing, and refusal to start on bad values."""
import pytest

from config import ConfigError, load_config, settings_table


def test_defaults_are_the_embedded_setup():
    config = load_config({})
    assert config.database_url == "sqlite:///var/voxbridge.db"
    assert config.telephony_configured is False
    assert config.default_region == "US"


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        load_config({"API_PORT": "http", "DEFAULT_REGION": "USA", "WEBHOOK_ALLOW_PRIVATE": "maybe",
                     "DATABASE_URL": "mysql://x"})
    message = str(exc.value)
    for name in ("API_PORT", "DEFAULT_REGION", "WEBHOOK_ALLOW_PRIVATE", "DATABASE_URL"):
        assert name in message


def test_esl_nodes_and_password_rule():
    with pytest.raises(ConfigError, match="FREESWITCH_ESL_PASSWORD"):
        load_config({"FREESWITCH_ESL_HOST": "fs1"})
    config = load_config({"FREESWITCH_ESL_HOST": "fs1, fs2:8022", "FREESWITCH_ESL_PASSWORD": "pw"})
    assert [(n.host, n.port) for n in config.esl_nodes] == [("fs1", 8021), ("fs2", 8022)]
    with pytest.raises(ConfigError, match="FREESWITCH_ESL_HOST"):
        load_config({"FREESWITCH_ESL_HOST": "fs1;rm -rf", "FREESWITCH_ESL_PASSWORD": "pw"})


def test_secrets_are_never_echoed():
    config = load_config({"FREESWITCH_ESL_HOST": "fs1", "FREESWITCH_ESL_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(config.redacted())
    assert config.redacted()["FREESWITCH_ESL_PASSWORD"] == "set"


def test_the_readme_table_lists_every_variable():
    table = settings_table()
    assert "| `DATABASE_URL` |" in table and "| `FREESWITCH_ESL_PASSWORD` | `(secret)` |" in table


def test_several_api_workers_need_postgresql():
    with pytest.raises(ConfigError, match="API_WORKERS"):
        load_config({"API_WORKERS": "2"})
    assert load_config({"API_WORKERS": "2", "DATABASE_URL": "postgresql://u@h/db"}).api_workers == 2


def test_readme_settings_table_is_current():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("<!-- settings:begin", 1)[1].split("-->", 1)[1].split("<!-- settings:end -->")[0]
    assert section.strip() == settings_table().strip()


def test_esl_password_must_fit_the_auth_line():
    with pytest.raises(ConfigError, match="FREESWITCH_ESL_PASSWORD: use letters"):
        load_config({"FREESWITCH_ESL_HOST": "fs1", "FREESWITCH_ESL_PASSWORD": "pw\nevent plain ALL"})
