"""A real HTTP server on 127.0.0.1 speaking the S3 subset the recording store uses (path-style PUT
and GET with one byte range). It rejects a request whose SigV4 signature, recomputed from the
headers the request says it signed, does not match: recordings.sigv4 itself is held to AWS's
published example in test_sigv4.py."""
import datetime as dt
import hashlib
import re

import gevent
from gevent.pywsgi import WSGIServer

from recordings.sigv4 import authorization

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")


class FakeS3:
    def __init__(self, bucket="recordings", access_key="minio", secret_key="minio-secret",  # noqa: S107 - a test server
                 region="us-east-1"):
        self.bucket, self.access_key, self.secret_key, self.region = bucket, access_key, secret_key, region
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self._app, log=None)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_port}"

    def _header(self, environ, name):
        key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
            name, "HTTP_" + name.upper().replace("-", "_"))
        return environ.get(key, "")

    def _signed_ok(self, environ, method, path, body) -> bool:
        match = _AUTH.fullmatch(environ.get("HTTP_AUTHORIZATION", ""))
        if not match or match.group(1) != self.access_key or match.group(3) != self.region:
            return False
        payload = self._header(environ, "x-amz-content-sha256")
        if method == "PUT" and payload != hashlib.sha256(body).hexdigest():
            return False
        names = [n for n in match.group(4).split(";") if n not in ("x-amz-date", "x-amz-content-sha256")]
        when = dt.datetime.strptime(self._header(environ, "x-amz-date"), "%Y%m%dT%H%M%SZ")
        expected = authorization(method, path, {n: self._header(environ, n) for n in names}, payload,
                                 self.access_key, self.secret_key, self.region, when)["Authorization"]
        return expected == environ["HTTP_AUTHORIZATION"]

    def _app(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = environ["wsgi.input"].read() if method == "PUT" else b""
        status, headers, out = self._answer(environ, method, path, body)
        self.requests.append((method, path, status))
        start_response(f"{status} X", headers)
        return [out]

    def _answer(self, environ, method, path, body):
        if not self._signed_ok(environ, method, path, body):
            return 403, [], b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
        prefix = f"/{self.bucket}/"
        if not path.startswith(prefix):
            return 404, [], b"<Error><Code>NoSuchBucket</Code></Error>"
        key = path[len(prefix):]
        if method == "PUT":
            self.objects[key] = body
            return 200, [("ETag", '"x"')], b""
        if key not in self.objects:
            return 404, [], b"<Error><Code>NoSuchKey</Code></Error>"
        data = self.objects[key]
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", environ.get("HTTP_RANGE", ""))
        if not wanted:
            return 200, [("Content-Length", str(len(data))), ("ETag", '"x"')], data
        first = int(wanted.group(1))
        last = min(int(wanted.group(2) or len(data) - 1), len(data) - 1)
        if first >= len(data):
            return 416, [], b"<Error><Code>InvalidRange</Code></Error>"
        return 206, [("Content-Range", f"bytes {first}-{last}/{len(data)}"),
                     ("Content-Length", str(last - first + 1))], data[first:last + 1]

    def __enter__(self):
        self.server.start()
        gevent.sleep(0)
        return self

    def __exit__(self, *exc):
        self.server.stop(timeout=1)
