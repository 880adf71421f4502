"""What the console's forms mean as API parameters: the Store-a-new-secret wizard's fields turned
into CreateSecret / PutResourcePolicy / RotateSecret requests, and the name rules AWS's console
shows as you type. Pure functions, so the browser tests need not cover every combination."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_VALUE_BYTES = 65536
MAX_NAME = 512
# AWS's console wording for the secret name field.
NAME_RULES = (
    "Secret name must contain only alphanumeric characters and the characters /_+=.@-",
    "Secret name must be between 1 and 512 characters",
    "Secret name must not end with a hyphen followed by six characters",
)
_NAME_CHARS = re.compile(r"[A-Za-z0-9/_+=.@-]*")
_SIX_SUFFIX = re.compile(r".*-[^-/]{6}")
DATABASE_ENGINES = ("mysql", "postgres", "oracle", "sqlserver", "mariadb", "db2")
DATABASE_FIELDS = ("username", "password", "engine", "host", "port", "dbname")
SECRET_TYPES = ("rds", "database", "other")


class FormError(Exception):
    """A wizard field the user must fix; shown next to the step it belongs to."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.message = message
        self.step = step


def name_problems(name: str) -> list[str]:
    """The rules a name breaks, in AWS's words (the console shows them as you type)."""
    problems = []
    if not _NAME_CHARS.fullmatch(name):
        problems.append(NAME_RULES[0])
    if not 1 <= len(name) <= MAX_NAME:
        problems.append(NAME_RULES[1])
    if _SIX_SUFFIX.fullmatch(name):
        problems.append(NAME_RULES[2])
    return problems


def pairs(keys: list[str], values: list[str]) -> list[tuple[str, str]]:
    """Rows of a key/value editor; blank rows are ignored, as AWS's console does."""
    return [(k, v) for k, v in zip(keys, values, strict=False) if k.strip() or v]


def kv_json(rows: list[tuple[str, str]]) -> str:
    # Compact, as AWS's console writes it and as JSON.stringify does in the page's live counter.
    return json.dumps(dict(rows), separators=(",", ":"), ensure_ascii=False)


def value_bytes(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


@dataclass
class StoreRequest:
    """The calls one Store makes, in order: (ValidateResourcePolicy), CreateSecret,
    (PutResourcePolicy), (RotateSecret)."""

    create: dict[str, Any]
    policy: str | None = None
    rotation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def secret_value(form: Callable[[str], str], fields: Callable[[str], list[str]]) -> str:
    secret_type = form("secret_type") or "other"
    if secret_type not in SECRET_TYPES:
        raise FormError("Choose a secret type.", 1)
    if secret_type in ("rds", "database"):
        creds: dict[str, Any] = {}
        for name in DATABASE_FIELDS:
            text = form(f"db_{name}")
            if name == "port" and text.strip():
                if not text.strip().isdigit():
                    raise FormError("Port must be a number.", 1)
                creds[name] = int(text.strip())
            elif text:
                creds[name] = text
        if not creds.get("username") or not creds.get("password"):
            raise FormError("Enter the user name and password of the database.", 1)
        return json.dumps(creds, separators=(",", ":"), ensure_ascii=False)
    if form("value_mode") == "plaintext":
        return form("plaintext")
    rows = pairs(fields("kv_key"), fields("kv_value"))
    if not rows and form("plaintext"):
        return form("plaintext")  # without the page's script both editors are shown
    if any(not k.strip() for k, _ in rows):
        raise FormError("Each key/value pair needs a key.", 1)
    if len({k for k, _ in rows}) != len(rows):
        raise FormError("Keys must be unique.", 1)
    return kv_json(rows)


def rotation_rules(form: Callable[[str], str]) -> dict[str, Any]:
    """The schedule builder (AutomaticallyAfterDays or rate(N hours)) or a typed expression."""
    rules: dict[str, Any] = {}
    if form("schedule_mode") == "expression":
        expression = form("schedule_expression").strip()
        if not expression:
            raise FormError("Enter a schedule expression: rate() or cron().", 3)
        rules["ScheduleExpression"] = expression
    else:
        text = form("schedule_every").strip()
        if not text.isdigit() or int(text) < 1:
            raise FormError("Enter how often to rotate, a whole number of at least 1.", 3)
        if form("schedule_unit") == "hours":
            rules["ScheduleExpression"] = f"rate({int(text)} {'hour' if text == '1' else 'hours'})"
        else:
            rules["AutomaticallyAfterDays"] = int(text)
    duration = form("window_duration").strip()
    if duration:
        rules["Duration"] = duration
    return rules


def store_request(
    form: Callable[[str], str], fields: Callable[[str], list[str]], token: str
) -> StoreRequest:
    """The wizard's fields as API parameters (the API's own validation still runs on them)."""
    value = secret_value(form, fields)
    create: dict[str, Any] = {"Name": form("name").strip(), "ClientRequestToken": token}
    create["SecretString"] = value
    if form("description").strip():
        create["Description"] = form("description").strip()
    key = form("kms_key_id").strip()
    if key and key != "alias/aws/secretsmanager":
        create["KmsKeyId"] = key
    tags = pairs(fields("tag_key"), fields("tag_value"))
    if tags:
        if any(not k.strip() for k, _ in tags):
            raise FormError("Each tag needs a key.", 2)
        create["Tags"] = [{"Key": k.strip(), "Value": v} for k, v in tags]
    replicas = []
    for region, replica_key in zip(fields("replica_region"), fields("replica_key"), strict=False):
        if not region.strip():
            continue
        entry = {"Region": region.strip()}
        if replica_key.strip() and replica_key.strip() != "alias/aws/secretsmanager":
            entry["KmsKeyId"] = replica_key.strip()
        replicas.append(entry)
    if replicas:
        create["AddReplicaRegions"] = replicas
    policy = form("resource_policy").strip() or None
    return StoreRequest(create=create, policy=policy, rotation=rotation_request(form))


def rotation_request(form: Callable[[str], str]) -> dict[str, Any] | None:
    """RotateSecret's parameters (without SecretId) when automatic rotation is on."""
    if form("rotation_enabled") != "on":
        return None
    rotation: dict[str, Any] = {"RotationRules": rotation_rules(form)}
    function = form("rotation_function").strip()
    if function:
        rotation["RotationLambdaARN"] = function
    rotation["RotateImmediately"] = form("rotate_immediately") == "on"
    return rotation


SAMPLE_LANGUAGES = (
    ("python", "Python (boto3)"),
    ("javascript", "JavaScript (SDK v3)"),
    ("java", "Java (SDK 2.x)"),
    ("go", "Go (SDK v2)"),
    ("cli", "AWS CLI"),
)


def sample_code(name: str, region: str, endpoint: str) -> dict[str, str]:
    """Code that retrieves this secret from this secretsd, per language (AWS's console shows the
    same snippets, without the endpoint an unmodified SDK needs to reach secretsd)."""
    n = json.dumps(name)
    r = json.dumps(region)
    e = json.dumps(endpoint)
    return {
        "python": (
            "import boto3\n\n"
            f'client = boto3.client("secretsmanager", region_name={r}, endpoint_url={e})\n'
            f"response = client.get_secret_value(SecretId={n})\n"
            'secret = response["SecretString"]\n'
        ),
        "javascript": (
            'import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";\n\n'
            f"const client = new SecretsManagerClient({{ region: {r}, endpoint: {e} }});\n"
            f"const response = await client.send(new GetSecretValueCommand({{ SecretId: {n} }}));\n"
            "const secret = response.SecretString;\n"
        ),
        "java": (
            "import java.net.URI;\n"
            "import software.amazon.awssdk.regions.Region;\n"
            "import software.amazon.awssdk.services.secretsmanager.SecretsManagerClient;\n"
            "import software.amazon.awssdk.services.secretsmanager.model.GetSecretValueRequest;\n\n"
            "SecretsManagerClient client = SecretsManagerClient.builder()\n"
            f"    .region(Region.of({r}))\n"
            f"    .endpointOverride(URI.create({e}))\n"
            "    .build();\n"
            "String secret = client.getSecretValue(\n"
            f"    GetSecretValueRequest.builder().secretId({n}).build()).secretString();\n"
        ),
        "go": (
            "cfg, err := config.LoadDefaultConfig(context.TODO(),\n"
            f"    config.WithRegion({r}))\n"
            "client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {\n"
            f"    o.BaseEndpoint = aws.String({e})\n"
            "})\n"
            "out, err := client.GetSecretValue(context.TODO(), &secretsmanager.GetSecretValueInput{\n"
            f"    SecretId: aws.String({n}),\n"
            "})\n"
            "secret := *out.SecretString\n"
        ),
        "cli": (
            f"aws secretsmanager get-secret-value --endpoint-url {_shell(endpoint)}"
            f" --region {_shell(region)} --secret-id {_shell(name)}\n"
        ),
    }


def _shell(word: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9/_+=.@:-]+", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


# Offered in the Replicate secret region picker (any region name the API accepts may be typed).
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)
# The wizard's review step knows the name only in the page; the page's script puts it here.
NAME_MARKER = "SECRET_NAME_PLACEHOLDER"


def key_value_view(value: str) -> list[tuple[str, str]] | None:
    """A retrieved value as key/value rows, when it is a flat JSON object (as AWS's console)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    rows = []
    for k, v in parsed.items():
        if isinstance(v, dict | list):
            return None
        rows.append((k, v if isinstance(v, str) else json.dumps(v)))
    return rows
