"""The scheduled purge happens, in the server, on its real clock, once the recovery window ends.

A server deletes one secret with a 7-day and one with a 30-day recovery window. The same data dir
and database are then served by a process whose clock runs 8 days ahead (the hidden
``--clock-offset``), which must purge exactly the 7-day one by itself. Back on the real clock (SigV4
refuses requests to a server 8 days off, so all checks go through a normal server) the 7-day
secret is gone for good and its name free again, while the 30-day one is still scheduled and can
be restored, and a secret that was never deleted is untouched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import SecretsManagerFactory, ServerFactory
from support.names import NameFactory
from support.server import wait_for_log

DAY = 86_400
FAST_PURGE = ("--purge-interval", "0.2")
PURGE_WAIT = 10.0
NOT_FOUND = "Secrets Manager can't find the specified secret."


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_purge_happens_after_the_recovery_window(
    server_factory: ServerFactory, sm_factory: SecretsManagerFactory, unique_name: NameFactory
) -> None:
    # A fast purge loop from the start: it must still leave both deleted secrets alone.
    server = server_factory(extra_args=FAST_PURGE)
    sm = sm_factory(server=server)
    short, long, kept = unique_name("seven"), unique_name("thirty"), unique_name("kept")
    arns = {
        name: sm.create_secret(Name=name, SecretString=f"value of {name}")["ARN"]
        for name in (short, long, kept)
    }
    sm.put_secret_value(SecretId=kept, SecretString="second value")
    sm.delete_secret(SecretId=short, RecoveryWindowInDays=7)
    deleted = sm.delete_secret(SecretId=long, RecoveryWindowInDays=30)
    deleted_date = sm.describe_secret(SecretId=long)["DeletedDate"]
    kept_before = strip_meta(sm.describe_secret(SecretId=kept))
    time.sleep(1.0)  # five purge passes on the real clock
    assert "DeletedDate" in sm.describe_secret(SecretId=short)
    assert "purged" not in server.logs()
    server.stop()

    offset_at = server.log_path.stat().st_size
    future = server_factory(
        data_dir=server.data_dir,
        database_url=server.database_url,
        extra_args=("--clock-offset", str(8 * DAY), *FAST_PURGE),
    )
    wait_for_log(future, "purged 1 secret(s)", offset_at, PURGE_WAIT)
    time.sleep(0.6)  # a few more passes: they must find nothing more to purge
    future.stop()
    log = future.log_path.read_bytes()[offset_at:].decode(errors="replace")
    assert log.count("purged") == 1, log
    assert "Traceback" not in log, log

    server.start()
    sm = sm_factory(server=server)
    # The 7-day secret is gone, under every form of its id, and its name is free again.
    for secret_id in (short, arns[short], arns[short][:-7]):
        with pytest.raises(ClientError) as exc:
            sm.describe_secret(SecretId=secret_id)
        assert error_code(exc) == ("ResourceNotFoundException", NOT_FOUND)
    listed = sm.list_secrets(
        IncludePlannedDeletion=True, Filters=[{"Key": "name", "Values": [short]}]
    )
    assert listed["SecretList"] == []
    recreated = sm.create_secret(Name=short, SecretString="new life")
    assert recreated["ARN"] != arns[short]
    assert recreated["ARN"][:-6] == arns[short][:-6]
    assert sm.get_secret_value(SecretId=short)["SecretString"] == "new life"
    versions = sm.list_secret_version_ids(SecretId=short, IncludeDeprecated=True)["Versions"]
    assert [(v["VersionId"], v["VersionStages"]) for v in versions] == [
        (recreated["VersionId"], ["AWSCURRENT"])
    ], "the recreated secret inherited versions"

    # The 30-day secret is still scheduled, with its original dates, and can be restored.
    described = sm.describe_secret(SecretId=long)
    assert described["ARN"] == arns[long] == deleted["ARN"]
    assert described["DeletedDate"] == deleted_date
    assert sm.restore_secret(SecretId=long)["ARN"] == arns[long]
    assert "DeletedDate" not in sm.describe_secret(SecretId=long)
    assert sm.get_secret_value(SecretId=long)["SecretString"] == f"value of {long}"

    # The secret that was never deleted is exactly as it was.
    assert strip_meta(sm.describe_secret(SecretId=kept)) == kept_before
    assert sm.get_secret_value(SecretId=kept)["SecretString"] == "second value"
    versions = sm.list_secret_version_ids(SecretId=kept, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 2


def strip_meta(response: dict[str, Any]) -> dict[str, Any]:
    # LastAccessedDate moves with reads (at day granularity), which is not the purge's doing.
    return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "LastAccessedDate")}
