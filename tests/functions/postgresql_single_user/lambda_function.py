"""PostgreSQL rotation function, single user: the user in the secret changes its own password.

Written for secretsd's tests in the style of AWS's rotation templates, from AWS's documentation
("How rotation works", "Lambda rotation functions"): a `lambda_handler(event, context)` that
checks the version named by ClientRequestToken and runs one of the four steps, each idempotent
(Secrets Manager may run a step again). The database driver is pure-Python pg8000, packed into
the deployment zip with its dependencies. Nothing here logs a password.
"""

import json
import logging
import os

import boto3
import pg8000.native

logger = logging.getLogger()
logger.setLevel(logging.INFO)
# Where the driver came from: the zip's own copy (the task root), as AWS's docs describe.
print(f"pg8000 loaded from {os.path.dirname(pg8000.__file__)}")


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    service_client = boto3.client(
        "secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"]
    )

    metadata = service_client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        logger.error("Secret %s is not enabled for rotation", arn)
        raise ValueError(f"Secret {arn} is not enabled for rotation")
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        logger.error("Secret version %s has no stage for rotation of secret %s.", token, arn)
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        logger.error("Secret version %s not set as AWSPENDING for rotation of %s.", token, arn)
        raise ValueError(f"Secret version {token} not set as AWSPENDING for rotation of {arn}.")

    if step == "createSecret":
        create_secret(service_client, arn, token)
    elif step == "setSecret":
        set_secret(service_client, arn, token)
    elif step == "testSecret":
        test_secret(service_client, arn, token)
    elif step == "finishSecret":
        finish_secret(service_client, arn, token)
    else:
        logger.error("lambda_handler: Invalid step parameter %s for secret %s", step, arn)
        raise ValueError(f"Invalid step parameter {step} for secret {arn}")


def create_secret(service_client, arn, token):
    """A new password in the AWSPENDING version, unless the version already has a value."""
    current_dict = get_secret_dict(service_client, arn, "AWSCURRENT")
    try:
        get_secret_dict(service_client, arn, "AWSPENDING", token)
        logger.info("createSecret: Successfully retrieved secret for %s.", arn)
    except service_client.exceptions.ResourceNotFoundException:
        exclude = os.environ.get("EXCLUDE_CHARACTERS", "/@\"'\\")
        password = service_client.get_random_password(ExcludeCharacters=exclude)
        current_dict["password"] = password["RandomPassword"]
        service_client.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=json.dumps(current_dict),
            VersionStages=["AWSPENDING"],
        )
        logger.info("createSecret: Successfully put secret for ARN %s and version %s.", arn, token)


def set_secret(service_client, arn, token):
    """The database user gets the AWSPENDING password, logging in with the current one (or the
    previous one, if a rotation set the password but did not finish)."""
    pending_dict = get_secret_dict(service_client, arn, "AWSPENDING", token)
    conn = get_connection(pending_dict)
    if conn:
        conn.close()
        logger.info("setSecret: AWSPENDING secret is already set as password for %s.", arn)
        return

    current_dict = get_secret_dict(service_client, arn, "AWSCURRENT")
    if current_dict["username"] != pending_dict["username"]:
        raise ValueError(f"Attempting to modify user {pending_dict['username']} in {arn}")
    if current_dict["host"] != pending_dict["host"]:
        raise ValueError(f"Attempting to modify the host of {arn}")
    conn = get_connection(current_dict)
    if not conn:
        try:
            previous_dict = get_secret_dict(service_client, arn, "AWSPREVIOUS")
        except service_client.exceptions.ResourceNotFoundException:
            previous_dict = None
        if previous_dict and previous_dict["username"] == pending_dict["username"]:
            conn = get_connection(previous_dict)
    if not conn:
        logger.error("setSecret: Unable to log into database with previous, current, or pending")
        raise ValueError(f"Unable to log into database with previous, current, or pending of {arn}")
    try:
        user, password = conn.run(
            "SELECT quote_ident(:username), quote_literal(:password)",
            username=pending_dict["username"],
            password=pending_dict["password"],
        )[0]
        # DDL takes no bind parameters: both parts were quoted by the server above.
        conn.run(f"ALTER USER {user} WITH PASSWORD {password}")
        logger.info("setSecret: Successfully set password for user %s in %s.", user, arn)
    finally:
        conn.close()


def test_secret(service_client, arn, token):
    """The AWSPENDING credentials log in and can query."""
    conn = get_connection(get_secret_dict(service_client, arn, "AWSPENDING", token))
    if not conn:
        logger.error("testSecret: Unable to log into database with pending secret of %s", arn)
        raise ValueError(f"Unable to log into database with pending secret of {arn}")
    try:
        conn.run("SELECT NOW()")
        logger.info("testSecret: Successfully signed into PostgreSQL with AWSPENDING of %s.", arn)
    finally:
        conn.close()


def finish_secret(service_client, arn, token):
    """AWSCURRENT moves to the new version (the old one becomes AWSPREVIOUS)."""
    metadata = service_client.describe_secret(SecretId=arn)
    current_version = None
    for version, stages in metadata["VersionIdsToStages"].items():
        if "AWSCURRENT" in stages:
            if version == token:
                logger.info("finishSecret: Version %s already marked as AWSCURRENT", version)
                return
            current_version = version
            break
    service_client.update_secret_version_stage(
        SecretId=arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )
    logger.info("finishSecret: Successfully set AWSCURRENT stage to version %s for %s.", token, arn)


def get_connection(secret_dict):
    """A connection with these credentials, or None when they do not log in."""
    try:
        return pg8000.native.Connection(
            user=secret_dict["username"],
            password=secret_dict["password"],
            host=secret_dict["host"],
            port=int(secret_dict.get("port", 5432)),
            database=secret_dict.get("dbname", "postgres"),
            timeout=5,
        )
    except (pg8000.native.Error, OSError):
        return None


def get_secret_dict(service_client, arn, stage, token=None):
    """The secret's JSON at `stage` (and version `token`), checked for the keys it needs."""
    required_fields = ["host", "username", "password"]
    if token:
        secret = service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        secret = service_client.get_secret_value(SecretId=arn, VersionStage=stage)
    secret_dict = json.loads(secret["SecretString"])
    for field in required_fields:
        if field not in secret_dict:
            raise KeyError(f"{field} key is missing from secret JSON")
    if secret_dict.get("engine", "postgres") != "postgres":
        raise KeyError("Database engine must be set to 'postgres' in order to use this function")
    return secret_dict
