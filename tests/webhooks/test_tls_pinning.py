"""HTTPS webhooks pinned to the checked address still verify TLS against the URL's host name.

Connecting to a resolved IP instead of the host must not turn certificate checking off: the SNI sent
and the name checked are the webhook URL's, and a certificate for another name or from an unknown
CA is refused. A local CA, a TLS server on 127.0.0.1, and the URL's host only in the Target.
"""
import datetime as dt
import ssl

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gevent.server import StreamServer

from webhooks import targets

HOST = "hooks.example.test"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject, issuer, public_key, signing_key, *, ca, dns=None):
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def pki(tmp_path):
    """A CA and a server certificate for `name`, written as files."""

    def make(name, ca_name="VoxBridge Test CA"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(name, ca_name, key.public_key(), ca_key, ca=False, dns=name)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "ca.pem").write_bytes(_pem(ca))
        (folder / "cert.pem").write_bytes(_pem(leaf))
        (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        return folder

    return make


@pytest.fixture
def tls_receiver():
    """An HTTPS receiver on 127.0.0.1 that records the SNI name and the request it got."""
    servers = []

    def start(folder):
        seen = {"sni": None, "requests": []}
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        context.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)

        def handle(sock, address):
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:  # read it all: closing on unread bytes would reset the connection
                    body += sock.recv(4096)
                seen["requests"].append(data.decode("latin-1"))
                sock.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (OSError, ssl.SSLError):  # a client that refused our certificate
                pass

        server = StreamServer(("127.0.0.1", 0), handle, ssl_context=context)
        server.start()
        servers.append(server)
        return server.server_port, seen

    yield start
    for server in servers:
        server.stop(timeout=1)


def _target(port):
    return targets.Target(f"https://{HOST}:{port}/hooks", "https", HOST, port, f"{HOST}:{port}", "/hooks",
                          ("127.0.0.1",))


def test_pinned_https_delivery_speaks_tls_to_the_url_host(pki, tls_receiver, monkeypatch):
    folder = pki(HOST)
    port, seen = tls_receiver(folder)
    monkeypatch.setattr(targets.certifi, "where", lambda: str(folder / "ca.pem"))
    status = targets.post_pinned(_target(port), b'{"ok":true}', {"Content-Type": "application/json"}, 5)
    assert status == 204
    assert seen["sni"] == HOST  # SNI is the URL's host, not the pinned IP
    request = seen["requests"][0]
    assert request.startswith("POST /hooks HTTP/1.1\r\n") and f"\r\nHost: {HOST}:{port}\r\n" in request


def test_pinned_https_delivery_refuses_a_certificate_for_another_name(pki, tls_receiver, monkeypatch):
    folder = pki("elsewhere.example.test")
    port, seen = tls_receiver(folder)
    monkeypatch.setattr(targets.certifi, "where", lambda: str(folder / "ca.pem"))
    with pytest.raises(urllib3.exceptions.SSLError):
        targets.post_pinned(_target(port), b"{}", {}, 5)
    assert seen["requests"] == []  # nothing was sent to a server that could not prove its name


def test_pinned_https_delivery_refuses_a_certificate_from_an_unknown_ca(pki, tls_receiver):
    port, seen = tls_receiver(pki(HOST))  # signed by a CA that is not in certifi's bundle
    with pytest.raises(urllib3.exceptions.SSLError):
        targets.post_pinned(_target(port), b"{}", {}, 5)
    assert seen["requests"] == []
