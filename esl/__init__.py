"""FreeSWITCH Event Socket client: framing, events, command builder, connection, supervisor, outbound server."""
