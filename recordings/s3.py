"""A small S3-compatible object store client (AWS S3, MinIO): PUT a file, GET an object streamed.

Path-style URLs (`<endpoint>/<bucket>/<key>`), which MinIO and S3 both serve; SigV4-signed
(recordings.sigv4). Keys are made by the uploader from ids, never from request text.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlparse

import certifi
import urllib3

from recordings.sigv4 import EMPTY_SHA256, authorization

_KEY = re.compile(r"[A-Za-z0-9._/-]{1,512}")


class StoreError(Exception):
    """The object store refused a request or could not be reached."""


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str


class S3Store:
    def __init__(self, settings: S3Settings, timeout_s: float = 30.0):
        self.settings = settings
        self.endpoint = settings.endpoint.rstrip("/")
        self.host = urlparse(self.endpoint).netloc
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False,
                                        cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())

    def _request(self, method: str, key: str, headers: dict[str, str], payload_sha256: str,
                 body: BinaryIO | None = None, preload: bool = True) -> urllib3.BaseHTTPResponse:
        if not _KEY.fullmatch(key) or ".." in key:
            raise StoreError(f"refusing object key {key!r}")
        path = f"/{self.settings.bucket}/{key}"
        headers = {"host": self.host, **headers}
        headers.update(authorization(method, path, headers, payload_sha256, self.settings.access_key,
                                     self.settings.secret_key, self.settings.region, dt.datetime.now(dt.UTC)))
        try:
            return self.http.request(method, self.endpoint + path, headers=headers, body=body, redirect=False,
                                     preload_content=preload)
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(f"object storage unreachable: {type(exc).__name__}") from None

    def put_file(self, key: str, path: str, content_type: str = "audio/wav") -> None:
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
            source.seek(0)
            response = self._request("PUT", key, {"content-type": content_type,
                                                  "content-length": str(os.fstat(source.fileno()).st_size)},
                                     digest.hexdigest(), body=source)
        if response.status != 200:
            raise StoreError(f"PUT {key}: HTTP {response.status} {response.data[:200]!r}")

    def get(self, key: str, byte_range: str | None = None) -> urllib3.BaseHTTPResponse:
        """The object's response, body not yet read: stream it, then release_conn()."""
        headers = {"range": byte_range} if byte_range else {}
        return self._request("GET", key, headers, EMPTY_SHA256, preload=False)


def store_from_config(config) -> S3Store | None:
    """The configured store, or None when S3_ENDPOINT_URL is empty (recordings stay local)."""
    if not config.s3_endpoint_url:
        return None
    return S3Store(S3Settings(config.s3_endpoint_url, config.s3_bucket, config.s3_region,
                              config.s3_access_key_id, config.s3_secret_access_key))
