"""FREESWITCH_ESL_HOST is read for the live-switch tests the way the app reads it."""
import pytest

from tests.fssim import conftest


@pytest.mark.parametrize("env, expected", [
    ({"FREESWITCH_ESL_HOST": "fs1.example.net"}, ("fs1.example.net", 8021, "ClueCon")),
    ({"FREESWITCH_ESL_HOST": "192.0.2.9:8022", "FREESWITCH_ESL_PASSWORD": "s3cret"}, ("192.0.2.9", 8022, "s3cret")),
    ({"FREESWITCH_ESL_HOST": "fs1:9000, fs2", "FREESWITCH_ESL_PORT": "8030"}, ("fs1", 9000, "ClueCon")),
    ({"FREESWITCH_ESL_HOST": "fs2", "FREESWITCH_ESL_PORT": "8030"}, ("fs2", 8030, "ClueCon")),
    ({"FREESWITCH_ESL_HOST": ""}, None),
])
def test_live_target_takes_the_first_node_with_its_port(monkeypatch, env, expected):
    for name in ("FREESWITCH_ESL_HOST", "FREESWITCH_ESL_PORT", "FREESWITCH_ESL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert conftest._live_target() == expected


def test_a_malformed_live_host_fails_with_the_configs_message(monkeypatch):
    from config import ConfigError

    monkeypatch.setenv("FREESWITCH_ESL_HOST", "bad host!")
    with pytest.raises(ConfigError, match="FREESWITCH_ESL_HOST"):
        conftest._live_target()
