"""AWS Signature Version 4 for S3 requests (header form), as AWS documents it.

Only what our object keys need: the path is `/<bucket>/<key>` of unreserved characters and slashes
(the uploader makes the keys), no query string. tests/recordings hold it to AWS's published example.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, day: str, region: str, service: str = "s3") -> bytes:
    key = _hmac(("AWS4" + secret_key).encode(), day)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def authorization(method: str, path: str, headers: dict[str, str], payload_sha256: str, access_key: str,
                  secret_key: str, region: str, now: dt.datetime) -> dict[str, str]:
    """The headers to add (x-amz-date, x-amz-content-sha256, Authorization); every header in
    `headers` (which must include host) is signed."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed.update({"x-amz-date": stamp, "x-amz-content-sha256": payload_sha256})
    names = sorted(signed)
    canonical = "\n".join([method, quote(path, safe="/~"), "",
                           "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload_sha256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, day, region), to_sign.encode(), hashlib.sha256).hexdigest()
    return {"x-amz-date": stamp, "x-amz-content-sha256": payload_sha256,
            "Authorization": f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                             f"Signature={signature}"}
