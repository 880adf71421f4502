"""STS sessions are forgotten by the server's scheduler a day after they expire; until then an
expired token is told apart (ExpiredTokenException) from an unknown one."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from support.factories import ClientFactory, ServerFactory
from support.server import Credentials, wait_for_log

DAY = 86_400


def test_expired_sessions_are_forgotten_after_a_day(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    server = server_factory(extra_args=("--purge-interval", "0.2"))
    token = client_factory("sts", server=server).get_session_token(DurationSeconds=900)
    creds = token["Credentials"]
    session = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert client_factory("sts", server=server, credentials=session).get_caller_identity()
    server.stop()

    offset_at = server.log_path.stat().st_size
    future = server_factory(
        data_dir=server.data_dir,
        database_url=server.database_url,
        extra_args=("--clock-offset", str(2 * DAY), "--purge-interval", "0.2"),
    )
    wait_for_log(future, "forgot 1 STS session(s)", offset_at, 10.0)
    future.stop()

    server.start()
    with pytest.raises(ClientError) as exc:
        client_factory("sts", server=server, credentials=session).get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
