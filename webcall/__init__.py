"""Talking to an agent from a browser: the token, the browsers' audio WebSocket, a web call's life."""
