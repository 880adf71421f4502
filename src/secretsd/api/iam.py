"""IAM handlers: validated parameters -> one service call -> the modelled output (query protocol)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from secretsd.errors import ServiceError
from secretsd.service.context import CallContext
from secretsd.service.iam import (
    IamService,
    PolicyView,
    group_arn,
    role_arn,
    user_arn,
)
from secretsd.store.console_repository import LoginProfileRecord
from secretsd.store.iam_repository import GroupRecord, RoleRecord, UserAccessKey, UserRecord

Params = dict[str, Any]
Handler = Callable[[IamService, CallContext, Params], dict[str, Any] | None]
DEFAULT_MAX_ITEMS = 100
T = TypeVar("T")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _tags_in(p: Params) -> list[tuple[str, str]]:
    return [(t["Key"], t["Value"]) for t in p.get("Tags") or []]


def _tags_out(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags]


def _page(p: Params, items: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], dict[str, Any]]:
    """IAM's Marker/MaxItems paging over a sorted listing; the marker names the next item."""
    start = 0
    marker = p.get("Marker")
    if marker is not None:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeError, ValueError):
            # Unverified wording; AWS refuses a marker it did not issue.
            raise ServiceError("InvalidInput", "Invalid Marker.") from None
        start = next((i for i, item in enumerate(items) if key(item) >= after), len(items))
    limit = p.get("MaxItems", DEFAULT_MAX_ITEMS)
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    out: dict[str, Any] = {"IsTruncated": more}
    if more:
        out["Marker"] = base64.urlsafe_b64encode(key(items[start + limit]).encode()).decode()
    return chunk, out


def user_out(user: UserRecord, *, tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.user_id,
        "Arn": user_arn(user.account_id, user.path, user.name),
        "CreateDate": _time(user.created_ms),
    }
    if tags and user.tags:
        out["Tags"] = _tags_out(user.tags)
    return out


def group_out(group: GroupRecord) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.group_id,
        "Arn": group_arn(group.account_id, group.path, group.name),
        "CreateDate": _time(group.created_ms),
    }


def role_out(role: RoleRecord, *, tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role_arn(role.account_id, role.path, role.name),
        "CreateDate": _time(role.created_ms),
        "AssumeRolePolicyDocument": role.trust_policy,
        "MaxSessionDuration": role.max_session_seconds,
    }
    if role.description is not None:
        out["Description"] = role.description
    if tags and role.tags:
        out["Tags"] = _tags_out(role.tags)
    return out


def _key_out(key: UserAccessKey) -> dict[str, Any]:
    return {
        "UserName": key.user_name,
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": _time(key.created_ms),
    }


def policy_out(view: PolicyView, *, description: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyName": view.name,
        "PolicyId": view.policy_id,
        "Arn": view.arn,
        "Path": view.path,
        "DefaultVersionId": view.default_version_id,
        "AttachmentCount": view.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
    }
    if description and view.description:
        out["Description"] = view.description
    out["CreateDate"] = _time(view.created_ms)
    out["UpdateDate"] = _time(view.updated_ms)
    return out


# -- users -------------------------------------------------------------------------------------
def create_user(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    user = svc.create_user(ctx, p["UserName"], p.get("Path", "/"), _tags_in(p))
    return {"User": user_out(user)}


def get_user(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    user = svc.get_user(ctx, p.get("UserName"))
    if user is None:
        # The root user: AWS answers with the account id and the root ARN, and no name.
        return {
            "User": {
                "UserId": ctx.account_id,
                "Arn": f"arn:aws:iam::{ctx.account_id}:root",
                "CreateDate": _time(svc.root_created_ms(ctx)),
            }
        }
    return {"User": user_out(user)}


def list_users(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    users, page = _page(p, svc.list_users(ctx, p.get("PathPrefix", "/")), lambda u: u.name.lower())
    return {"Users": [user_out(u, tags=False) for u in users], **page}


def delete_user(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_user(ctx, p["UserName"])


def tag_user(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.tag_user(ctx, p["UserName"], _tags_in(p))


def untag_user(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.untag_user(ctx, p["UserName"], p["TagKeys"])


def list_user_tags(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    tags, page = _page(p, svc.user_tags(ctx, p["UserName"]), lambda t: t[0])
    return {"Tags": _tags_out(tags), **page}


# -- access keys -------------------------------------------------------------------------------
def create_access_key(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    created = svc.create_access_key(ctx, p.get("UserName"))
    out = _key_out(created.key)
    out["SecretAccessKey"] = created.secret_access_key
    return {"AccessKey": out}


def list_access_keys(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    keys, page = _page(p, svc.list_access_keys(ctx, p.get("UserName")), lambda k: k.access_key_id)
    return {"AccessKeyMetadata": [_key_out(k) for k in keys], **page}


def get_access_key_last_used(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    user = svc.access_key_owner(ctx, p["AccessKeyId"])
    # Use is not tracked: AWS's answer for a key never used.
    return {"UserName": user, "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}


def update_access_key(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.update_access_key(ctx, p.get("UserName"), p["AccessKeyId"], p["Status"])


def delete_access_key(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_access_key(ctx, p.get("UserName"), p["AccessKeyId"])


def _profile_out(profile: LoginProfileRecord) -> dict[str, Any]:
    return {
        "LoginProfile": {
            "UserName": profile.user_name,
            "CreateDate": _time(profile.created_ms),
            "PasswordResetRequired": profile.reset_required,
        }
    }


def create_login_profile(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return _profile_out(
        svc.create_login_profile(
            ctx, p.get("UserName"), p.get("Password"), p.get("PasswordResetRequired", False)
        )
    )


def get_login_profile(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return _profile_out(svc.get_login_profile(ctx, p.get("UserName")))


def update_login_profile(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.update_login_profile(ctx, p["UserName"], p.get("Password"), p.get("PasswordResetRequired"))


def delete_login_profile(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_login_profile(ctx, p.get("UserName"))


# -- groups ------------------------------------------------------------------------------------
def create_group(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"Group": group_out(svc.create_group(ctx, p["GroupName"], p.get("Path", "/")))}


def get_group(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    group, members = svc.get_group(ctx, p["GroupName"])
    users, page = _page(p, members, lambda u: u.name.lower())
    return {"Group": group_out(group), "Users": [user_out(u, tags=False) for u in users], **page}


def list_groups(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    groups, page = _page(
        p, svc.list_groups(ctx, p.get("PathPrefix", "/")), lambda g: g.name.lower()
    )
    return {"Groups": [group_out(g) for g in groups], **page}


def list_groups_for_user(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    groups, page = _page(p, svc.list_groups_for_user(ctx, p["UserName"]), lambda g: g.name.lower())
    return {"Groups": [group_out(g) for g in groups], **page}


def delete_group(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_group(ctx, p["GroupName"])


def add_user_to_group(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.add_user_to_group(ctx, p["GroupName"], p["UserName"])


def remove_user_from_group(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.remove_user_from_group(ctx, p["GroupName"], p["UserName"])


# -- roles -------------------------------------------------------------------------------------
def create_role(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    role = svc.create_role(
        ctx,
        p["RoleName"],
        p.get("Path", "/"),
        p["AssumeRolePolicyDocument"],
        p.get("Description"),
        p.get("MaxSessionDuration", 3600),
        _tags_in(p),
    )
    return {"Role": role_out(role)}


def get_role(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    out = role_out(svc.get_role(ctx, p["RoleName"]))
    # Last use is not tracked; AWS shows an empty element for a role never used.
    out["RoleLastUsed"] = {}
    return {"Role": out}


def update_assume_role_policy(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.update_trust_policy(ctx, p["RoleName"], p["PolicyDocument"])


def list_roles(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    roles, page = _page(p, svc.list_roles(ctx, p.get("PathPrefix", "/")), lambda r: r.name.lower())
    return {"Roles": [role_out(r, tags=False) for r in roles], **page}


def delete_role(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_role(ctx, p["RoleName"])


def tag_role(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.tag_role(ctx, p["RoleName"], _tags_in(p))


def untag_role(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.untag_role(ctx, p["RoleName"], p["TagKeys"])


def list_role_tags(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    tags, page = _page(p, svc.role_tags(ctx, p["RoleName"]), lambda t: t[0])
    return {"Tags": _tags_out(tags), **page}


# -- inline policies (one set of handlers per owner kind) ---------------------------------------
_OWNER_PARAM = {"user": "UserName", "group": "GroupName", "role": "RoleName"}


def _inline_handlers(kind: str) -> dict[str, Handler]:
    owner_param = _OWNER_PARAM[kind]
    title = kind.title()

    def put(svc: IamService, ctx: CallContext, p: Params) -> None:
        svc.put_inline_policy(ctx, kind, p[owner_param], p["PolicyName"], p["PolicyDocument"])

    def get(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
        owner, name, document = svc.get_inline_policy(ctx, kind, p[owner_param], p["PolicyName"])
        return {owner_param: owner, "PolicyName": name, "PolicyDocument": document}

    def delete(svc: IamService, ctx: CallContext, p: Params) -> None:
        svc.delete_inline_policy(ctx, kind, p[owner_param], p["PolicyName"])

    def listing(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
        names, page = _page(p, svc.list_inline_policies(ctx, kind, p[owner_param]), lambda n: n)
        return {"PolicyNames": names, **page}

    def attach(svc: IamService, ctx: CallContext, p: Params) -> None:
        svc.attach(ctx, kind, p[owner_param], p["PolicyArn"])

    def detach(svc: IamService, ctx: CallContext, p: Params) -> None:
        svc.detach(ctx, kind, p[owner_param], p["PolicyArn"])

    def attached(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
        found = svc.list_attached(ctx, kind, p[owner_param], p.get("PathPrefix", "/"))
        items, page = _page(p, found, lambda item: item[1])
        return {
            "AttachedPolicies": [{"PolicyName": n, "PolicyArn": a} for n, a in items],
            **page,
        }

    return {
        f"Put{title}Policy": put,
        f"Get{title}Policy": get,
        f"Delete{title}Policy": delete,
        f"List{title}Policies": listing,
        f"Attach{title}Policy": attach,
        f"Detach{title}Policy": detach,
        f"ListAttached{title}Policies": attached,
    }


# -- managed policies --------------------------------------------------------------------------
def create_policy(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    view = svc.create_policy(
        ctx, p["PolicyName"], p.get("Path", "/"), p["PolicyDocument"], p.get("Description")
    )
    # CreatePolicy's answer leaves the description out (as ListPolicies does).
    return {"Policy": policy_out(view, description=False)}


def get_policy(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"Policy": policy_out(svc.get_policy(ctx, p["PolicyArn"]))}


def get_policy_version(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    view = svc.get_policy_version(ctx, p["PolicyArn"], p["VersionId"])
    return {
        "PolicyVersion": {
            "Document": view.document,
            "VersionId": view.default_version_id,
            "IsDefaultVersion": True,
            "CreateDate": _time(view.updated_ms),
        }
    }


def list_policy_versions(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    view = svc.list_policy_versions(ctx, p["PolicyArn"])
    version = {
        "VersionId": view.default_version_id,
        "IsDefaultVersion": True,
        "CreateDate": _time(view.updated_ms),
    }
    return {"Versions": [version], "IsTruncated": False}


def list_policies(svc: IamService, ctx: CallContext, p: Params) -> dict[str, Any]:
    views = svc.list_policies(
        ctx, p.get("Scope", "All"), bool(p.get("OnlyAttached", False)), p.get("PathPrefix", "/")
    )
    items, page = _page(p, views, lambda v: v.name.lower() + "\x00" + v.arn)
    return {"Policies": [policy_out(v, description=False) for v in items], **page}


def delete_policy(svc: IamService, ctx: CallContext, p: Params) -> None:
    svc.delete_policy(ctx, p["PolicyArn"])


HANDLERS: dict[str, Handler] = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    "TagUser": tag_user,
    "UntagUser": untag_user,
    "ListUserTags": list_user_tags,
    "CreateLoginProfile": create_login_profile,
    "GetLoginProfile": get_login_profile,
    "UpdateLoginProfile": update_login_profile,
    "DeleteLoginProfile": delete_login_profile,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "GetAccessKeyLastUsed": get_access_key_last_used,
    "DeleteAccessKey": delete_access_key,
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "ListGroupsForUser": list_groups_for_user,
    "DeleteGroup": delete_group,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "TagRole": tag_role,
    "UntagRole": untag_role,
    "ListRoleTags": list_role_tags,
    **_inline_handlers("user"),
    **_inline_handlers("group"),
    **_inline_handlers("role"),
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "GetPolicyVersion": get_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "ListPolicies": list_policies,
    "DeletePolicy": delete_policy,
}
