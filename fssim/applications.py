"""Dialplan applications the simulated switch has: those of the modules freeswitch/ loads.

FreeSWITCH runs an application only if a loaded module registered it. For any other name,
switch_core_session_execute_application (src/switch_core_session.c) logs "Invalid Application",
hangs the channel up with DESTINATION_OUT_OF_ORDER and returns without executing it: no
CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE is fired. The simulator does the same, so a typo in a
dialplan, an originate `&app()` or a sendmsg fails here as it would on the real switch.

The names are the applications registered by mod_dptools, mod_event_socket, mod_spandsp and
mod_sofia in 1.10 (`show application` on such a switch lists them). The simulator models the
effect of a few (fssim/switch.py `_app_*`); the others run as applications with no effect on
the simulated media.
"""

DPTOOLS = frozenset({
    "answer", "bgsystem", "bind_digit_action", "bind_meta_app", "block_dtmf", "break", "bridge",
    "bridge_export", "capture", "chat", "check_acl", "clear_digit_action", "clear_speech_cache", "cng_plc",
    "deduplicate_dtmf", "deflect", "delay_echo", "detect_speech", "digit_action_set_realm", "displace_session",
    "early_hangup", "eavesdrop", "echo", "enable_heartbeat", "endless_playback", "eval", "event",
    "execute_extension", "export", "flush_dtmf", "gentones", "group", "hangup", "hold", "info", "intercept",
    "ivr", "jitterbuffer", "limit", "limit_execute", "log", "loop_playback", "media_reset", "multiset",
    "mutex", "page", "park", "park_state", "phrase", "pickup", "play_and_detect_speech",
    "play_and_get_digits", "playback", "pre_answer", "preprocess", "presence", "privacy", "push",
    "queue_dtmf", "read", "record", "record_session", "record_session_mask", "record_session_unmask",
    "recovery_refresh", "redirect", "remove_bugs", "rename", "respond", "ring_ready", "say",
    "sched_broadcast", "sched_cancel", "sched_hangup", "sched_heartbeat", "sched_transfer", "send_display",
    "send_dtmf", "send_info", "session_loglevel", "set", "set_audio_level", "set_global", "set_name",
    "set_profile_var", "set_user", "set_zombie_exec", "sleep", "sound_test", "speak", "start_dtmf",
    "start_dtmf_generate", "stop", "stop_displace_session", "stop_dtmf", "stop_dtmf_generate",
    "stop_record_session", "stop_tone_detect", "strftime", "system", "three_way", "tone_detect", "transfer",
    "transfer_vars", "unbind_meta_app", "unblock_dtmf", "unhold", "unset", "unshift", "verbose_events",
    "wait_for_answer", "wait_for_silence",
})
EVENT_SOCKET = frozenset({"socket"})
SPANDSP = frozenset({
    "rxfax", "txfax", "t38_gateway", "stopfax", "spandsp_start_dtmf", "spandsp_stop_dtmf",
    "spandsp_start_tone_detect", "spandsp_stop_tone_detect", "spandsp_start_fax_detect",
    "spandsp_stop_fax_detect", "spandsp_inject_tdd", "spandsp_start_tdd_decode", "spandsp_stop_tdd_decode",
})
SOFIA = frozenset({"sofia_sla"})

APPLICATIONS: frozenset[str] = DPTOOLS | EVENT_SOCKET | SPANDSP | SOFIA


def is_application(name: str) -> bool:
    """Would the switch find an application of this name? (FreeSWITCH matches names exactly.)"""
    return name in APPLICATIONS
