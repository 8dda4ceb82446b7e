"""A managed-identity stand-in for the identity-path test: a loopback certificate for Azurite's HTTPS,
and a token endpoint that speaks the App Service managed-identity protocol (IDENTITY_ENDPOINT and
IDENTITY_HEADER, the one Azure Functions apps use), handing out tokens Azurite's `--oauth basic` accepts.

The tokens are unsigned look-alikes of Entra ID access tokens: Azurite checks issuer, audience and
lifetime only, so this proves the path from the settings to a bearer request, not a real token.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

STORAGE_AUDIENCE = "https://storage.azure.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
IDENTITY_HEADER = "identity-header-for-tests"


def loopback_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "azurite-cert.pem", folder / "azurite-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def access_token(resource: str, client_id: str | None) -> tuple[str, int]:
    now = int(time.time())
    expires = now + 3600
    claims = {"aud": resource.rstrip("/"), "iss": f"https://sts.windows.net/{TENANT}/", "iat": now, "nbf": now - 60,
              "exp": expires, "appid": client_id or "system-assigned", "tid": TENANT}
    return f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(claims)}.c2lnbmF0dXJl", expires


class TokenEndpoint:
    """The App Service managed-identity endpoint on loopback; `requests` keeps what each caller asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self.send_error(401)
                    return
                token, expires = access_token(query.get("resource", ""), query.get("client_id"))
                body = json.dumps({"access_token": token, "expires_on": str(expires), "token_type": "Bearer",
                                   "resource": query.get("resource", ""), "client_id": query.get("client_id", "")})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/msi/token"

    def settings(self) -> dict[str, str]:
        """The settings Azure gives a function app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": IDENTITY_HEADER}

    def __enter__(self) -> TokenEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
