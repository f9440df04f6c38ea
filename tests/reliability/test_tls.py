"""Transport security of both hooks against a real TLS server on 127.0.0.1 (issue 8).

``tests/integration/hooks`` already checks the settings (``verify`` parsing, the warning on
``verify=false``, plain ``http://`` to a remote Canvas refused); here the handshake is real:
a self-signed certificate is refused by default (no request is ever answered, so no token
or client secret is sent), ``verify=false`` connects and logs a warning, ``verify=<CA file>``
connects without one; and plain ``http://`` to a non-loopback host is refused for both hooks
before any connection is attempted, unless ``allow_insecure_http`` is set.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canvas_aspen.hooks._http import ConnectionConfigError

pytestmark = pytest.mark.timeout(120)

TOKEN, SECRET = "tls-canvas-token-7f3a9c", "tls-aspen-secret-2b8e41"


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem, key_pem = folder / "cert.pem", folder / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_pem, key_pem


@pytest.fixture
def https(cert_files):
    """A TLS server with a self-signed certificate answering like Canvas and Aspen."""
    answered: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            answered.append(self.path)
            self._json({"gradingPeriods": []} if "gradingPeriods" in self.path else [])

        def do_POST(self):
            answered.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._json({"access_token": "tls-access-token-0001", "token_type": "bearer", "expires_in": 3600})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, cert_files))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", answered
    server.shutdown()
    server.server_close()


def hooks(monkeypatch, host: str, **extra):
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook

    extra = {"max_attempts": 1, **extra}
    monkeypatch.setenv(
        "AIRFLOW_CONN_CANVAS_TLS",
        json.dumps({"conn_type": "canvas", "host": host, "password": TOKEN, "extra": extra}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_ASPEN_TLS",
        json.dumps(
            {"conn_type": "aspen", "host": host, "login": "tls-client", "password": SECRET, "extra": extra}
        ),
    )
    return CanvasHook(canvas_conn_id="canvas_tls"), AspenHook(aspen_conn_id="aspen_tls")


def test_self_signed_certificate_is_refused_by_default(https, monkeypatch):
    from canvas_aspen.hooks.aspen import AspenApiError
    from canvas_aspen.hooks.canvas import CanvasApiError

    url, answered = https
    canvas, aspen = hooks(monkeypatch, url)
    assert canvas.settings.verify is True and aspen.settings.verify is True
    with pytest.raises(CanvasApiError, match="TLS error") as c_err:
        canvas.list_courses()
    with pytest.raises(AspenApiError, match="TLS error") as a_err:
        aspen.list_grading_periods()
    assert answered == []  # no request got through: no token or client secret was sent
    for err in (c_err.value, a_err.value):
        assert "verify" in str(err) and TOKEN not in str(err) and SECRET not in str(err)


def test_verify_false_connects_and_warns(https, monkeypatch, caplog, capsys):
    url, answered = https
    caplog.set_level(logging.WARNING)
    canvas, aspen = hooks(monkeypatch, url, verify=False)
    assert canvas.list_courses() == [] and aspen.list_grading_periods() == []
    said = caplog.text + "".join(capsys.readouterr())
    assert said.count("TLS certificate verification is OFF") >= 2  # once per hook
    assert answered


def test_a_ca_file_in_verify_connects_without_warning(https, cert_files, monkeypatch, caplog, capsys):
    url, _ = https
    caplog.set_level(logging.WARNING)
    canvas, aspen = hooks(monkeypatch, url, verify=str(cert_files[0]))
    assert canvas.list_courses() == [] and aspen.list_grading_periods() == []
    assert "verification is OFF" not in caplog.text + "".join(capsys.readouterr())


@pytest.mark.parametrize("which", [0, 1], ids=["canvas", "aspen"])
def test_plain_http_to_a_remote_host_is_refused_unless_allowed(which, monkeypatch):
    hook = hooks(monkeypatch, "http://district.example.org")[which]
    with pytest.raises(ConnectionConfigError, match="allow_insecure_http"):
        _ = hook.settings
    hook = hooks(monkeypatch, "http://district.example.org", allow_insecure_http=True)[which]
    assert hook.settings.base_url == "http://district.example.org"
    assert (
        hooks(monkeypatch, "http://127.0.0.1:9")[which].settings.base_url == "http://127.0.0.1:9"
    )  # loopback
