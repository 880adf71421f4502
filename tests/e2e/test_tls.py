"""TLS: `--tls-cert/--tls-key` serve HTTPS to an unmodified boto3, aws:SecureTransport is true
over it, and SIGHUP swaps the certificate for new connections without a restart."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.factories import ServerFactory
from support.server import Credentials, ServerProcess

REGION = "us-east-1"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def client(server: ServerProcess, service: str, ca: Path, who: Credentials | None = None) -> Any:
    creds = who or server.credentials
    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        verify=str(ca),
    )


def served_certificate(server: ServerProcess) -> str:
    return ssl.get_server_certificate(("127.0.0.1", server.port))


def test_https_secure_transport_and_certificate_reload_on_sighup(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    first_cert, first_key = self_signed(tmp_path, "first")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(first_cert.read_bytes())
    key.write_bytes(first_key.read_bytes())
    server = server_factory(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    assert server.endpoint.startswith("https://")

    # An IAM user allowed to list secrets only over TLS, and denied anything over plain HTTP.
    iam = client(server, "iam", first_cert)
    iam.create_user(UserName="tls-only")
    iam.put_user_policy(
        UserName="tls-only",
        PolicyName="tls",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:ListSecrets",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                    },
                    {
                        "Effect": "Deny",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            }
        ),
    )
    created = iam.create_access_key(UserName="tls-only")["AccessKey"]
    user = Credentials(created["AccessKeyId"], created["SecretAccessKey"])
    assert client(server, "secretsmanager", first_cert, user).list_secrets()["SecretList"] == []

    # The audit trail sees the same calls (and no value of the new access key).
    events = client(server, "cloudtrail", first_cert).lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "tls-only"}]
    )["Events"]
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.1)
        events = client(server, "cloudtrail", first_cert).lookup_events(
            LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "tls-only"}]
        )["Events"]
    assert [e["EventName"] for e in events] == ["ListSecrets"]

    # A new certificate in the same files, SIGHUP: new connections get it, no restart.
    second_cert, second_key = self_signed(tmp_path, "second")
    cert.write_bytes(second_cert.read_bytes())
    key.write_bytes(second_key.read_bytes())
    pid = server.pid
    os.kill(pid, signal.SIGHUP)
    wanted = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(second_cert.read_text()))
    deadline = time.monotonic() + 10
    while served_certificate(server) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served_certificate(server) == wanted
    assert server.running and server.pid == pid
    assert client(server, "sts", second_cert).get_caller_identity()["Arn"].endswith(":user/admin")
    assert "TLS certificate reloaded" in server.logs()
