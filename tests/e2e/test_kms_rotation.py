"""Automatic KMS key rotation happens in the server, on its clock, at NextRotationDate.

A key with rotation enabled (90 days, the shortest period KMS allows) encrypts a value and seals a
secret. The same data is then served by a process whose clock runs 91 days ahead (the hidden
``--clock-offset``; SigV4 refuses requests to it, so it is only watched through its log), which
must rotate the key by itself, once. Back on the real clock, the key's NextRotationDate has moved
a period on, and what was sealed before the rotation still opens.
"""

from __future__ import annotations

from datetime import timedelta

from support.factories import ClientFactory, ServerFactory
from support.names import NameFactory
from support.server import wait_for_log

DAY = 86_400


def test_key_rotates_itself_at_its_rotation_date(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    server = server_factory(extra_args=("--purge-interval", "0.2"))
    kms = client_factory("kms", server=server)
    sm = client_factory("secretsmanager", server=server)
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    before = kms.get_key_rotation_status(KeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"sealed before")["CiphertextBlob"]
    name = unique_name()
    sm.create_secret(Name=name, SecretString="secret before", KmsKeyId=key["Arn"])
    assert "rotated" not in server.logs()
    server.stop()

    offset_at = server.log_path.stat().st_size
    future = server_factory(
        data_dir=server.data_dir,
        database_url=server.database_url,
        extra_args=("--clock-offset", str(91 * DAY), "--purge-interval", "0.2"),
    )
    wait_for_log(future, "rotated 1 KMS key(s)", offset_at, 10.0)
    future.stop()
    log = future.log_path.read_bytes()[offset_at:].decode(errors="replace")
    assert log.count("rotated") == 1, log
    assert "Traceback" not in log, log

    server.start()
    kms = client_factory("kms", server=server)
    sm = client_factory("secretsmanager", server=server)
    after = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert after["KeyRotationEnabled"] is True
    moved = after["NextRotationDate"] - before["NextRotationDate"]
    # Rotated at "now + 91 days", so the next date is about 91 days later than it was.
    assert timedelta(days=90) < moved < timedelta(days=92), moved
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"sealed before"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "secret before"
    sm.put_secret_value(SecretId=name, SecretString="sealed after")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "sealed after"
