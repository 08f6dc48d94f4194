"""A customer's tool endpoint: checks the VoxBridge signature like a real receiver, answers with a slot.

A request whose signature does not verify with `secret` gets 401; `faults` (tests/fakes/faults.py) make it slow
or failing; `answer` is the JSON it returns; `big` makes it answer far more than the platform reads.
"""
from __future__ import annotations

import json

from tests.fakes.http import FakeHTTPServer, Request, Writer
from webhooks.signing import SIGNATURE_HEADER, SignatureError, verify


class CustomerToolServer(FakeHTTPServer):
    def __init__(self, secret: str, answer: dict | None = None):
        super().__init__()
        self.secret = secret
        self.answer = answer if answer is not None else {"slot": "Tuesday at 3 pm"}
        self.verified: list[dict] = []  # bodies (or GET queries) whose signature checked out
        self.big = False

    def handle(self, request: Request, writer: Writer) -> None:
        try:
            verify(self.secret, request.headers.get(SIGNATURE_HEADER.lower(), ""), request.body)
        except SignatureError as exc:
            return writer.send_body(401, json.dumps({"error": str(exc)}).encode())
        if writer.fault.status:
            return writer.send_body(writer.fault.status, b'{"error": "boom"}')
        self.verified.append(request.json() if request.body else {"query": request.query})
        body = json.dumps({**self.answer, "padding": "x" * 100_000} if self.big else self.answer).encode()
        writer.send_body(200, body)
