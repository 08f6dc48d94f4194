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


PG = "postgresql://u@h/db"


def test_the_pool_size_is_a_typed_setting():
    assert load_config({}).database_pool_size == 40 and load_config({}).database_max_connections == 100
    assert load_config({"DATABASE_POOL_SIZE": "12"}).database_pool_size == 12
    for bad in ("forty", "0", "-3"):
        with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
            load_config({"DATABASE_POOL_SIZE": bad})


def test_workers_times_pool_size_must_fit_the_servers_connections():
    """4 workers x 40 = 160 connections against PostgreSQL's default 100 ended in 'too many clients'."""
    with pytest.raises(ConfigError) as exc:
        load_config({"DATABASE_URL": PG, "API_WORKERS": "4"})
    message = str(exc.value)
    assert "API_WORKERS=4" in message and "DATABASE_POOL_SIZE=40" in message and "= 160 connections" in message
    assert "DATABASE_MAX_CONNECTIONS=100" in message
    assert load_config({"DATABASE_URL": PG, "API_WORKERS": "2"}).api_workers == 2  # 80 fit
    assert load_config({"DATABASE_URL": PG, "API_WORKERS": "4", "DATABASE_POOL_SIZE": "25"}).api_workers == 4
    assert load_config({"DATABASE_URL": PG, "API_WORKERS": "4", "DATABASE_MAX_CONNECTIONS": "200"}).api_workers == 4
    with pytest.raises(ConfigError, match="DATABASE_MAX_CONNECTIONS=30"):
        load_config({"DATABASE_URL": PG, "DATABASE_MAX_CONNECTIONS": "30"})  # one process's pool alone


def test_the_pool_is_opened_at_the_configured_size(postgres_url):
    import app as voxbridge_app
    from models import database

    previous = database.obj
    try:
        voxbridge_app._setup(load_config({"DATABASE_URL": postgres_url, "DATABASE_POOL_SIZE": "7"}))
        assert database.obj._max_connections == 7
    finally:
        database.initialize(previous)


def test_readme_settings_table_is_current():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("<!-- settings:begin", 1)[1].split("-->", 1)[1].split("<!-- settings:end -->")[0]
    assert section.strip() == settings_table().strip()


def test_esl_password_must_fit_the_auth_line():
    with pytest.raises(ConfigError, match="FREESWITCH_ESL_PASSWORD: use letters"):
        load_config({"FREESWITCH_ESL_HOST": "fs1", "FREESWITCH_ESL_PASSWORD": "pw\nevent plain ALL"})


def test_answering_machine_words_are_on_unless_turned_off():
    assert load_config({}).amd_words is True
    assert load_config({"AMD_WORDS": "off"}).amd_words is False
    with pytest.raises(ConfigError, match="AMD_WORDS"):
        load_config({"AMD_WORDS": "maybe"})


def test_offline_provider_settings_are_typed_and_bad_values_refused():
    config = load_config({})
    assert (config.stt_pool_workers, config.stt_pool_search, config.tts_cache_mb) == (0, "bounded", 32)
    config = load_config({"STT_POOL_WORKERS": "3", "STT_POOL_SEARCH": " Narrow ", "TTS_CACHE_MB": "0"})
    assert (config.stt_pool_workers, config.stt_pool_search, config.tts_cache_mb) == (3, "narrow", 0)
    with pytest.raises(ConfigError) as exc:
        load_config({"STT_POOL_WORKERS": "many", "STT_POOL_SEARCH": "widest", "TTS_CACHE_MB": "-1"})
    message = str(exc.value)
    assert "STT_POOL_WORKERS: must be a whole number between 0 and 256 (got 'many')" in message
    assert "STT_POOL_SEARCH: must be wide or bounded or narrow (got 'widest')" in message
    assert "TTS_CACHE_MB: must be between 0 and 4096 (got '-1')" in message
    with pytest.raises(ConfigError, match="STT_POOL_WORKERS: must be between 0 and 256"):
        load_config({"STT_POOL_WORKERS": "1000"})


def test_serve_builds_the_offline_providers_with_the_settings(monkeypatch):
    """The shared recognizer pool and the TTS cache are made with STT_POOL_* and TTS_CACHE_MB, and serve sets
    them before anything can open a call (build_services)."""
    import app as voxbridge_app
    from pipeline.providers import pocketsphinx_pool, tts_cache

    previous_pool, previous_cache = pocketsphinx_pool._shared, tts_cache.shared_cache()
    previous_settings = dict(pocketsphinx_pool._shared_settings)
    try:
        voxbridge_app.configure_offline_providers(
            load_config({"STT_POOL_WORKERS": "3", "STT_POOL_SEARCH": "narrow", "TTS_CACHE_MB": "5"}))
        pocketsphinx_pool._shared = None
        pool = pocketsphinx_pool.shared_pool()  # made, not started: no process yet
        assert (pool.size, pool.search, pool.pids()) == (3, "narrow", [])
        assert tts_cache.shared_cache().max_bytes == 5 * 1024 * 1024

        voxbridge_app.configure_offline_providers(load_config({}))  # 0: the cores this process may use
        pocketsphinx_pool._shared = None
        pool = pocketsphinx_pool.shared_pool()
        assert (pool.size, pool.search) == (pocketsphinx_pool.default_size(), "bounded")
        # Several API workers on one host share the cores: not a pool per core in each of them.
        monkeypatch.setattr(pocketsphinx_pool, "default_size", lambda: 8)
        pg = {"DATABASE_URL": "postgresql://voxbridge@127.0.0.1:5432/voxbridge", "DATABASE_POOL_SIZE": "2"}
        assert voxbridge_app.stt_pool_size(load_config({**pg, "API_WORKERS": "4"})) == 2
        assert voxbridge_app.stt_pool_size(load_config({**pg, "API_WORKERS": "16"})) == 1
        assert voxbridge_app.stt_pool_size(load_config({**pg, "API_WORKERS": "4", "STT_POOL_WORKERS": "3"})) == 3
        assert tts_cache.shared_cache().max_bytes == 32 * 1024 * 1024

        order = []
        monkeypatch.setattr(voxbridge_app, "configure_offline_providers", lambda config: order.append("configure"))

        def build_services(*args, **kwargs):
            order.append("build_services")
            raise RuntimeError("stop here")

        monkeypatch.setattr(voxbridge_app, "build_services", build_services)
        with pytest.raises(RuntimeError, match="stop here"):
            voxbridge_app._run_instance(load_config({}), None, 0, "secret")
        assert order == ["configure", "build_services"]
    finally:
        pocketsphinx_pool._shared = previous_pool
        pocketsphinx_pool._shared_settings.update(previous_settings)
        tts_cache._shared = previous_cache


def test_the_media_connect_bound_has_a_sane_default_and_refuses_bad_values():
    assert load_config({}).media_connect_timeout_s == 10
    assert load_config({"MEDIA_CONNECT_TIMEOUT": "2.5"}).media_connect_timeout_s == 2.5
    assert load_config({"MEDIA_CONNECT_TIMEOUT": "0"}).media_connect_timeout_s == 0  # no bound
    for bad in ("-1", "301", "soon"):
        with pytest.raises(ConfigError, match="MEDIA_CONNECT_TIMEOUT"):
            load_config({"MEDIA_CONNECT_TIMEOUT": bad})
