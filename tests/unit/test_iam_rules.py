"""IAM/STS rules that need no server: ids, tag merging, policy sizes, handler coverage."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.api.iam import HANDLERS as IAM_HANDLERS
from secretsd.api.sts import HANDLERS as STS_HANDLERS
from secretsd.errors import ServiceError
from secretsd.protocol.model import load_service_model
from secretsd.service.iam import check_policy, check_trust_policy, merge_tags, new_unique_id
from secretsd.service.sts import new_session_token, session_tags

_TAG = st.text(alphabet="abcABC12", min_size=1, max_size=3)


def test_unique_ids_look_like_aws() -> None:
    for prefix in ("AIDA", "AGPA", "AROA", "ANPA"):
        assert re.fullmatch(prefix + "[A-Z2-7]{17}", new_unique_id(prefix))
    assert new_unique_id("AIDA") != new_unique_id("AIDA")


def test_session_tokens_are_long_and_random() -> None:
    token = new_session_token()
    assert len(token) >= 200 and token != new_session_token()


@given(st.lists(st.tuples(_TAG, _TAG)), st.lists(st.tuples(_TAG, _TAG)))
def test_session_tags_override_role_tags_ignoring_case(
    role: list[tuple[str, str]], requested: list[tuple[str, str]]
) -> None:
    merged = session_tags(role, requested)
    keys = [k.lower() for k, _ in merged]
    assert len(keys) == len(set(keys))
    for key, _ in requested:
        final = [v for k, v in requested if k.lower() == key.lower()][-1]
        assert dict((k.lower(), v) for k, v in merged)[key.lower()] == final
    assert {k.lower() for k, _ in role} | {k.lower() for k, _ in requested} == set(keys)


@given(st.lists(st.tuples(_TAG, _TAG)), st.lists(st.tuples(_TAG, _TAG)))
def test_tag_user_replaces_values_of_existing_keys(
    existing: list[tuple[str, str]], added: list[tuple[str, str]]
) -> None:
    merged = dict(merge_tags(existing, added))
    assert merged == {**dict(existing), **dict(added)}


def test_trust_policy_size_ignores_whitespace() -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    padded = json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=400)
    assert len(padded) > 2048
    check_trust_policy(padded)
    big = {"Version": "2012-10-17", "Statement": [dict(statement, Sid=f"s{i}") for i in range(40)]}
    with pytest.raises(ServiceError) as exc:
        check_trust_policy(json.dumps(big))
    assert (exc.value.code, exc.value.message, exc.value.status) == (
        "LimitExceeded",
        "Cannot exceed quota for ACLSizePerRole: 2048",
        409,
    )


def test_identity_policies_may_not_name_principals() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
    }
    with pytest.raises(ServiceError) as exc:
        check_policy(json.dumps(document))
    assert exc.value.code == "MalformedPolicyDocument"
    assert exc.value.message == "Policy document should not specify a principal."


def test_every_handler_is_a_modelled_operation() -> None:
    iam = set(load_service_model("iam").operation_names)
    sts = set(load_service_model("sts").operation_names)
    assert set(IAM_HANDLERS) <= iam and set(STS_HANDLERS) <= sts
    required = {
        "CreateUser", "GetUser", "ListUsers", "DeleteUser", "CreateAccessKey", "ListAccessKeys",
        "UpdateAccessKey", "DeleteAccessKey", "CreateGroup", "GetGroup", "AddUserToGroup",
        "RemoveUserFromGroup", "ListGroupsForUser", "CreateRole", "GetRole", "DeleteRole",
        "PutUserPolicy", "GetUserPolicy", "DeleteUserPolicy", "PutGroupPolicy", "GetGroupPolicy",
        "DeleteGroupPolicy", "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy",
        "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy", "DetachGroupPolicy",
        "AttachRolePolicy", "DetachRolePolicy", "ListAttachedUserPolicies",
        "ListAttachedGroupPolicies", "ListAttachedRolePolicies", "CreatePolicy", "GetPolicy",
        "ListPolicies", "DeletePolicy", "GetPolicyVersion", "TagUser", "TagRole", "ListUserTags",
        "ListRoleTags",
    }  # fmt: skip
    assert required <= set(IAM_HANDLERS)
    assert set(STS_HANDLERS) == {"GetCallerIdentity", "AssumeRole", "GetSessionToken"}
