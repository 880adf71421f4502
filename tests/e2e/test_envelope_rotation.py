"""Secret envelopes follow KMS key rotation: after RotateKeyOnDemand new secret versions are wrapped
with the new material version (as recorded in the stored envelope), and older versions still
decrypt, also in a restarted process that has none of the material cached."""

from __future__ import annotations

from typing import Any

from secretsd.crypto.envelope import Envelope
from support import canary
from support.factories import ClientFactory, SecretsManagerFactory
from support.names import NameFactory
from support.server import ServerProcess


def _material_version(server: ServerProcess, version_id: str) -> int:
    rows = canary.query(
        server.database_url,
        server.data_dir,
        f"SELECT envelope FROM secret_versions WHERE version_id = '{version_id}'",  # noqa: S608
    )
    assert len(rows) == 1
    return Envelope.from_bytes(bytes(rows[0][0])).material_version


def _value(sm: Any, name: str, version_id: str) -> str:
    got: str = sm.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"]
    return got


def test_new_versions_use_rotated_material_and_old_ones_still_decrypt(
    fresh_server: ServerProcess,
    sm_factory: SecretsManagerFactory,
    client_factory: ClientFactory,
    unique_name: NameFactory,
) -> None:
    kms = client_factory("kms", server=fresh_server)
    sm = sm_factory(server=fresh_server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    name = unique_name()
    v1 = sm.create_secret(Name=name, SecretString="one", KmsKeyId=key_id)["VersionId"]
    assert _material_version(fresh_server, v1) == 1

    kms.rotate_key_on_demand(KeyId=key_id)
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    kms.rotate_key_on_demand(KeyId=key_id)
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    assert [_material_version(fresh_server, v) for v in (v1, v2, v3)] == [1, 2, 3]
    assert [_value(sm, name, v) for v in (v1, v2, v3)] == ["one", "two", "three"]

    fresh_server.restart()
    sm = sm_factory(server=fresh_server)
    kms = client_factory("kms", server=fresh_server)
    assert [_value(sm, name, v) for v in (v3, v2, v1)] == ["three", "two", "one"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "three"

    # Re-encrypting labelled versions (a key change) also uses the new key's current material.
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=other)
    sm.update_secret(SecretId=name, KmsKeyId=other)
    assert _material_version(fresh_server, v3) == 2  # AWSCURRENT, re-encrypted
    assert _material_version(fresh_server, v2) == 2  # AWSPREVIOUS, re-encrypted
    assert _material_version(fresh_server, v1) == 1  # unlabelled: left under the old key
    assert [_value(sm, name, v) for v in (v1, v2, v3)] == ["one", "two", "three"]
