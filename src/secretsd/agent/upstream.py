"""How the Agent listener calls Secrets Manager: with boto3 and credentials of its own (a profile
of a shared credentials file), signed like any other client, so the endpoint authorizes the
listener's principal exactly as AWS authorizes the real Agent's role."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

USER_AGENT = "secretsd-agent/1"
# Errors the Agent treats as transient: with a cached value it serves that value instead.
TRANSIENT_STATUS = 500


class AgentConfigError(Exception):
    pass


@dataclass(frozen=True)
class UpstreamError(Exception):
    status: int
    code: str
    message: str

    @property
    def transient(self) -> bool:
        return self.status >= TRANSIENT_STATUS or self.code in (
            "ThrottlingException",
            "TooManyRequestsException",
        )


@dataclass(frozen=True)
class AgentCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    @classmethod
    def from_file(cls, path: str, profile: str) -> AgentCredentials:
        parser = configparser.RawConfigParser()
        try:
            read = parser.read(Path(path).expanduser())
        except configparser.Error as exc:
            raise AgentConfigError(f"cannot parse the credentials file {path}: {exc}") from exc
        if not read:
            raise AgentConfigError(f"cannot read the agent's credentials file {path}")
        if not parser.has_section(profile):
            raise AgentConfigError(f"no profile [{profile}] in {path}")
        section = parser[profile]
        try:
            return cls(
                section["aws_access_key_id"],
                section["aws_secret_access_key"],
                section.get("aws_session_token"),
            )
        except KeyError as exc:
            raise AgentConfigError(f"profile [{profile}] in {path} lacks {exc}") from exc


class SecretsManagerUpstream:
    """Blocking calls (botocore); the listener runs them in a thread."""

    def __init__(
        self, endpoint: str, region: str, credentials: AgentCredentials, verify: str | bool
    ) -> None:
        # botocore directly (boto3 is not a runtime dependency); the same client boto3 builds.
        self._client: Any = botocore.session.get_session().create_client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            verify=verify,
            config=Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=30,
                user_agent_extra=USER_AGENT,
            ),
        )

    def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> dict[str, Any]:
        params: dict[str, str] = {"SecretId": secret_id}
        if version_id is not None:
            params["VersionId"] = version_id
        if version_stage is not None:
            params["VersionStage"] = version_stage
        return dict(self._call(self._client.get_secret_value, params))

    def versions_to_stages(self, secret_arn: str) -> dict[str, list[str]]:
        described = self._call(self._client.describe_secret, {"SecretId": secret_arn})
        return dict(described.get("VersionIdsToStages") or {})

    @staticmethod
    def _call(method: Any, params: dict[str, str]) -> Any:
        try:
            return method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            raise UpstreamError(
                status, str(error.get("Code", "")), str(error.get("Message", ""))
            ) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise UpstreamError(504, "TimeoutError", "Timeout") from exc
        except BotoConnectionError as exc:
            raise UpstreamError(502, "ConnectionError", "Read Error") from exc
