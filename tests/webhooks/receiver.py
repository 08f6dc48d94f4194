"""A real HTTP receiver on 127.0.0.1 whose answers a test scripts (status codes in order)."""
import gevent
from gevent.pywsgi import WSGIServer


class Receiver:
    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.received = []
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None)

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.received.append((headers, body))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b"ok"]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def __enter__(self):
        self.server.start()
        gevent.sleep(0)
        return self

    def __exit__(self, *exc):
        self.server.stop(timeout=1)
