"""Modules FreeSWITCH 1.10 ships (src/mod/<group>/<module>), for check-config's modules.conf check.

Taken from the source tree's build/modules.conf.in, which lists every in-tree module, built by
default or not; a name outside this table (mod_sofia_typo) is a module FreeSWITCH cannot load.
EXTERNAL_MODULES are built from outside the tree by freeswitch/Dockerfile.
"""

FREESWITCH_1_10_MODULES: dict[str, tuple[str, ...]] = {
    "applications": (
        "mod_abstraction", "mod_av", "mod_avmd", "mod_bert", "mod_blacklist", "mod_callcenter", "mod_cidlookup",
        "mod_cluechoo", "mod_commands", "mod_conference", "mod_curl", "mod_cv", "mod_db", "mod_directory",
        "mod_distributor", "mod_dptools", "mod_easyroute", "mod_enum", "mod_esf", "mod_esl", "mod_expr",
        "mod_fifo", "mod_fsk", "mod_fsv", "mod_hash", "mod_hiredis", "mod_httapi", "mod_http_cache",
        "mod_ladspa", "mod_lcr", "mod_memcache", "mod_mongo", "mod_mp4", "mod_mp4v2", "mod_nibblebill",
        "mod_oreka", "mod_osp", "mod_prefix", "mod_rad_auth", "mod_redis", "mod_rss", "mod_signalwire",
        "mod_sms", "mod_sms_flowroute", "mod_snapshot", "mod_snom", "mod_sonar", "mod_soundtouch",
        "mod_spandsp", "mod_spy", "mod_stress", "mod_test", "mod_translate", "mod_valet_parking",
        "mod_video_filter", "mod_vmd", "mod_voicemail", "mod_voicemail_ivr",
    ),
    "asr_tts": (
        "mod_cepstral", "mod_flite", "mod_pocketsphinx", "mod_tts_commandline", "mod_unimrcp",
    ),
    "codecs": (
        "mod_amr", "mod_amrwb", "mod_b64", "mod_bv", "mod_clearmode", "mod_codec2", "mod_com_g729",
        "mod_dahdi_codec", "mod_g723_1", "mod_g729", "mod_h26x", "mod_ilbc", "mod_isac", "mod_mp4v", "mod_opus",
        "mod_sangoma_codec", "mod_silk", "mod_siren", "mod_theora",
    ),
    "databases": (
        "mod_mariadb", "mod_pgsql",
    ),
    "dialplans": (
        "mod_dialplan_asterisk", "mod_dialplan_directory", "mod_dialplan_xml",
    ),
    "directories": (
        "mod_ldap",
    ),
    "endpoints": (
        "mod_alsa", "mod_gsmopen", "mod_h323", "mod_khomp", "mod_loopback", "mod_opal", "mod_portaudio",
        "mod_rtc", "mod_rtmp", "mod_skinny", "mod_sofia", "mod_verto",
    ),
    "event_handlers": (
        "mod_amqp", "mod_cdr_csv", "mod_cdr_mongodb", "mod_cdr_pg_csv", "mod_cdr_sqlite", "mod_erlang_event",
        "mod_event_multicast", "mod_event_socket", "mod_fail2ban", "mod_format_cdr", "mod_json_cdr",
        "mod_radius_cdr", "mod_odbc_cdr", "mod_kazoo", "mod_rayo", "mod_smpp", "mod_snmp", "mod_event_zmq",
    ),
    "formats": (
        "mod_imagick", "mod_local_stream", "mod_native_file", "mod_png", "mod_portaudio_stream",
        "mod_shell_stream", "mod_shout", "mod_sndfile", "mod_ssml", "mod_tone_stream", "mod_vlc", "mod_opusfile",
    ),
    "languages": (
        "mod_basic", "mod_java", "mod_lua", "mod_managed", "mod_perl", "mod_python", "mod_python3", "mod_v8",
        "mod_yaml",
    ),
    "loggers": (
        "mod_console", "mod_graylog2", "mod_logfile", "mod_syslog", "mod_raven",
    ),
    "say": (
        "mod_say_de", "mod_say_en", "mod_say_es", "mod_say_es_ar", "mod_say_fa", "mod_say_fr", "mod_say_he",
        "mod_say_hr", "mod_say_hu", "mod_say_it", "mod_say_ja", "mod_say_nl", "mod_say_pl", "mod_say_pt",
        "mod_say_ru", "mod_say_sv", "mod_say_th", "mod_say_zh",
    ),
    "timers": (
        "mod_posix_timer", "mod_timerfd",
    ),
    "xml_int": (
        "mod_xml_cdr", "mod_xml_curl", "mod_xml_ldap", "mod_xml_radius", "mod_xml_rpc", "mod_xml_scgi",
    ),
}
EXTERNAL_MODULES = ("mod_audio_fork",)   # jambonz/freeswitch-modules, see freeswitch/Dockerfile
KNOWN_MODULES = frozenset({m for group in FREESWITCH_1_10_MODULES.values() for m in group} | set(EXTERNAL_MODULES))
