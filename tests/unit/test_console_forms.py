"""The console wizard's fields as API parameters (console/forms.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.console.forms import (
    NAME_RULES,
    FormError,
    key_value_view,
    kv_json,
    name_problems,
    sample_code,
    store_request,
    value_bytes,
)


def form_of(fields: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return (lambda n: (fields.get(n) or [""])[0]), (lambda n: fields.get(n, []))


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("MySecret", []),
        ("prod/db_main+x=y.z@a-b", []),
        ("My Secret", [NAME_RULES[0]]),
        ("", [NAME_RULES[1]]),
        ("a" * 513, [NAME_RULES[1]]),
        ("app-abcdef", [NAME_RULES[2]]),
        ("app-abcde", []),
    ],
)
def test_name_rules_in_aws_words(name: str, broken: list[str]) -> None:
    assert name_problems(name) == broken


@given(st.lists(st.tuples(st.text(min_size=1), st.text()), unique_by=lambda kv: kv[0]))
def test_key_value_pairs_round_trip(rows: list[tuple[str, str]]) -> None:
    text = kv_json(rows)
    assert json.loads(text) == dict(rows)
    assert key_value_view(text) == rows
    assert value_bytes(text) == len(text.encode("utf-8", "surrogatepass"))


def test_the_guides_secret_becomes_these_calls() -> None:
    form, fields = form_of(
        {
            "secret_type": ["other"],
            "value_mode": ["kv"],
            "kv_key": ["username", "password", ""],
            "kv_value": ["saanvi", "EXAMPLE-PASSWORD", ""],
            "kms_key_id": ["alias/aws/secretsmanager"],
            "name": [" MySecret "],
            "description": ["d"],
            "tag_key": ["team"],
            "tag_value": ["payments"],
            "resource_policy": ['{"Version":"2012-10-17","Statement":[]}'],
            "replica_region": ["us-west-2", ""],
            "replica_key": ["alias/aws/secretsmanager", ""],
            "rotation_enabled": ["on"],
            "schedule_mode": ["builder"],
            "schedule_every": ["30"],
            "schedule_unit": ["days"],
            "window_duration": ["4h"],
            "rotation_function": ["arn:aws:lambda:us-east-1:123456789012:function:f"],
        }
    )
    plan = store_request(form, fields, "t" * 36)
    assert plan.create == {
        "Name": "MySecret",
        "ClientRequestToken": "t" * 36,
        "SecretString": '{"username":"saanvi","password":"EXAMPLE-PASSWORD"}',
        "Description": "d",
        "Tags": [{"Key": "team", "Value": "payments"}],
        "AddReplicaRegions": [{"Region": "us-west-2"}],
    }
    assert plan.policy == '{"Version":"2012-10-17","Statement":[]}'
    assert plan.rotation == {
        "RotationRules": {"AutomaticallyAfterDays": 30, "Duration": "4h"},
        "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "RotateImmediately": False,
    }


def test_database_credentials_and_expressions() -> None:
    form, fields = form_of(
        {
            "secret_type": ["database"],
            "db_username": ["admin"],
            "db_password": ["pw"],
            "db_engine": ["postgres"],
            "db_port": ["5432"],
            "name": ["db"],
            "kms_key_id": ["alias/mine"],
            "rotation_enabled": ["on"],
            "schedule_mode": ["expression"],
            "schedule_expression": ["cron(0 8 1 * ? *)"],
            "rotate_immediately": ["on"],
        }
    )
    plan = store_request(form, fields, "t" * 36)
    assert json.loads(plan.create["SecretString"]) == {
        "username": "admin",
        "password": "pw",
        "engine": "postgres",
        "port": 5432,
    }
    assert plan.create["KmsKeyId"] == "alias/mine"
    assert plan.rotation == {
        "RotationRules": {"ScheduleExpression": "cron(0 8 1 * ? *)"},
        "RotateImmediately": True,
    }


@pytest.mark.parametrize(
    ("fields", "step"),
    [
        ({"secret_type": ["database"], "db_username": ["u"]}, 1),
        ({"kv_key": ["", "k"], "kv_value": ["v", "w"]}, 1),
        ({"kv_key": ["k", "k"], "kv_value": ["v", "w"]}, 1),
        ({"tag_key": [""], "tag_value": ["v"]}, 2),
        ({"rotation_enabled": ["on"], "schedule_every": ["0"]}, 3),
        ({"rotation_enabled": ["on"], "schedule_mode": ["expression"]}, 3),
    ],
)
def test_what_the_user_must_fix_names_its_step(fields: dict[str, list[str]], step: int) -> None:
    form, many = form_of({"name": ["n"], **fields})
    with pytest.raises(FormError) as caught:
        store_request(form, many, "t" * 36)
    assert caught.value.step == step


def test_hours_become_a_rate_expression() -> None:
    form, fields = form_of(
        {"rotation_enabled": ["on"], "schedule_every": ["1"], "schedule_unit": ["hours"]}
    )
    plan = store_request(form, fields, "t" * 36)
    assert plan.rotation is not None
    assert plan.rotation["RotationRules"] == {"ScheduleExpression": "rate(1 hour)"}


def test_sample_code_names_the_secret_in_every_language() -> None:
    samples = sample_code("prod/db", "eu-west-1", "http://127.0.0.1:8566")
    assert set(samples) == {"python", "javascript", "java", "go", "cli"}
    for code in samples.values():
        assert "prod/db" in code
        assert "eu-west-1" in code
        assert "http://127.0.0.1:8566" in code
    assert samples["cli"].startswith("aws secretsmanager get-secret-value")


def test_only_flat_objects_show_as_key_value() -> None:
    assert key_value_view('{"a": 1, "b": "x"}') == [("a", "1"), ("b", "x")]
    assert key_value_view('{"a": {"b": 1}}') is None
    assert key_value_view("[1]") is None
    assert key_value_view("not json") is None
