"""SigV4 against AWS's published S3 example ("Example: GET Object", Signature Version 4 header-based
authentication, Amazon S3 API reference): the first 10 bytes of examplebucket/test.txt."""
import datetime as dt

from recordings.sigv4 import EMPTY_SHA256, authorization

AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example key


def test_the_aws_documented_get_object_example():
    headers = authorization("GET", "/test.txt", {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"},
                            EMPTY_SHA256, AWS_ACCESS_KEY, AWS_SECRET_KEY, "us-east-1", dt.datetime(2013, 5, 24))
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_any_change_to_the_request_changes_the_signature():
    base = {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"}
    sign = lambda path, headers, secret=AWS_SECRET_KEY: authorization(  # noqa: E731
        "GET", path, headers, EMPTY_SHA256, AWS_ACCESS_KEY, secret, "us-east-1", dt.datetime(2013, 5, 24)
    )["Authorization"]
    reference = sign("/test.txt", base)
    assert sign("/test.txt2", base) != reference
    assert sign("/test.txt", {**base, "Range": "bytes=0-8"}) != reference
    assert sign("/test.txt", base, "other") != reference
