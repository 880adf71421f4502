"""A handler for secretsd's tests that wraps a rotation function (`lambda_function`) and, for a
secret tagged `test-fault` = `<Step>:<mode>`, misbehaves at that step before doing its work:

- `raise`: an unhandled exception;
- `timeout`: sleeps past the function's Timeout;
- `garbage`: returns a result that is not JSON;
- `gate:<directory>`: creates `<directory>/started`, then waits for `<directory>/open` and runs
  the step (for killing the server while a step runs).

Any other secret is rotated as `lambda_function` rotates it.
"""

import os
import time

import boto3
import lambda_function


def lambda_handler(event, context):
    client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    tags = client.describe_secret(SecretId=event["SecretId"]).get("Tags", [])
    fault = next((t["Value"] for t in tags if t["Key"] == "test-fault"), "")
    step, _, mode = fault.partition(":")
    if step == event["Step"]:
        print(f"injected fault {mode} at {step} of {event['ClientRequestToken']}", flush=True)
        if mode == "raise":
            raise RuntimeError(f"injected failure at {step}")
        if mode == "timeout":
            time.sleep(context.get_remaining_time_in_millis() / 1000 + 5)
        if mode == "garbage":
            return {"not", "json"}
        if mode.startswith("gate:"):
            directory = mode[len("gate:") :]
            with open(os.path.join(directory, "started"), "w"):
                pass
            while not os.path.exists(os.path.join(directory, "open")):
                time.sleep(0.1)
    return lambda_function.lambda_handler(event, context)
