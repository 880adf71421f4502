"""IAM: users, groups, roles, access keys, inline and managed policies, in AWS's rules and words.

Names, paths and lengths are checked against the model by the protocol layer; this module owns
what the model cannot say: uniqueness ignoring case, existence, quotas, policy grammar and size,
and the order AWS checks them in (existence before conflicts).

Where the messages come from (AWS responses quoted in issues and emulators' recordings):
- "The user with name X cannot be found." (fog's IAM mock; TINA's IAM tests), likewise for groups
  and roles; "The user policy with name X cannot be found." (several emulators, fog);
  "The Access Key with id X cannot be found." (paws docs quoting AWS, moto).
- "Cannot exceed quota for AccessKeysPerUser: 2" (moto's test against AWS; many reports).
- "Cannot delete entity, must delete access keys first." (aws-controllers-k8s/community#2229,
  status 409), "... must delete login profile first." (cloud-custodian#1663); "must delete
  policies first.", "must detach all policies first.", "must remove users from group first."
  (emulators' tables of AWS behaviour); the last is AWS's answer to DeleteUser for a member of a
  group (hashicorp/terraform#3774 and #2818, status 409) and to DeleteGroup with members
  (hashicorp/terraform#29147).
- "A policy called X already exists. Duplicate names are not allowed." (several terraform logs).
- "Policy arn:... does not exist or is not attachable." (terraform AttachRolePolicy, 404).
- "Maximum policy size of 2048 bytes exceeded for user X" (CDK/CLI logs, status 409),
  "Cannot exceed quota for PolicySize: 6144", "Cannot exceed quota for ACLSizePerRole: 2048"
  (terraform/CLI logs). The role (10240) and group (5120) inline-size messages follow the user
  form: unverified.
- "User with name X already exists." / "Role with name X already exists." (terraform CreateUser
  and CreateRole logs, 409); "Group with name X already exists." (a migration write-up quoting
  AWS). "The role with name X cannot be found." (terraform GetRole logs, 404).
- "Policy arn:... was not found." (terraform GetPolicy log, 404). For DetachUserPolicy of a
  policy not attached, and for GetPolicyVersion of another version, the wording is unverified.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from secretsd.auth.principals import new_access_key_id, new_secret_access_key
from secretsd.clock import Clock
from secretsd.crypto.password_hash import hash_password
from secretsd.errors import ServiceError
from secretsd.policy import PolicyKind, PolicySyntaxError, parse_policy
from secretsd.policy.context import ContextValue, request_tag_keys
from secretsd.policy.managed import ManagedPolicy, aws_managed_policies, aws_managed_policy
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.store.console_repository import ConsoleRepository, LoginProfileRecord
from secretsd.store.database import Database, StoreConflict
from secretsd.store.iam_repository import (
    GroupRecord,
    IamRepository,
    ManagedPolicyRecord,
    RoleRecord,
    UserAccessKey,
    UserRecord,
)

ACCESS_KEYS_PER_USER = 2
# Aggregate inline policy size per entity, in characters other than whitespace (IAM quotas).
INLINE_POLICY_LIMITS: Mapping[str, int] = {"user": 2048, "group": 5120, "role": 10240}
MANAGED_POLICY_LIMIT = 6144
TRUST_POLICY_LIMIT = 2048
MIN_SESSION_SECONDS = 3600
MAX_SESSION_SECONDS = 43200
_ID_ALPHABET = string.ascii_uppercase + "234567"
_WHITESPACE = re.compile(r"\s+")
_AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy/"
_ACCOUNT_ID = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(r"arn:aws:(iam|sts)::(\d{12}):(root|user|role|assumed-role)(?:/(.+))?")
_POLICY_ARN = re.compile(r"^arn:aws:iam::(\d{12}|aws):policy(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]+)$")


def new_unique_id(prefix: str) -> str:
    """An IAM unique id: AIDA/AGPA/AROA/ANPA + 17 base-32 characters, as AWS's look."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def _err(code: str, message: str, status: int = 400) -> ServiceError:
    return ServiceError(code, message, status)


def no_such_entity(message: str) -> ServiceError:
    return _err("NoSuchEntity", message, 404)


def _already_exists(message: str) -> ServiceError:
    return _err("EntityAlreadyExists", message, 409)


def _limit(message: str) -> ServiceError:
    return _err("LimitExceeded", message, 409)


def _delete_conflict(message: str) -> ServiceError:
    return _err("DeleteConflict", message, 409)


def _malformed(message: str) -> ServiceError:
    return _err("MalformedPolicyDocument", message, 400)


def _size(document: str) -> int:
    return len(_WHITESPACE.sub("", document))


def check_policy(document: str, kind: PolicyKind = "identity") -> None:
    try:
        parse_policy(document, kind=kind)
    except PolicySyntaxError as exc:
        raise _malformed(exc.message) from None


def user_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def group_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:group{path}{name}"


def role_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def policy_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    key: UserAccessKey
    secret_access_key: str  # shown once, in the CreateAccessKey response only


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A managed policy, customer or AWS managed, as GetPolicy/ListPolicies show it."""

    name: str
    arn: str
    policy_id: str
    path: str
    default_version_id: str
    description: str | None
    document: str
    created_ms: int
    updated_ms: int
    attachment_count: int


def _aws_view(policy: ManagedPolicy, attachments: int) -> PolicyView:
    return PolicyView(
        policy.name,
        policy.arn,
        policy.policy_id,
        policy.path,
        policy.default_version_id,
        policy.description,
        policy.document,
        int(policy.create_date.timestamp() * 1000),
        int(policy.update_date.timestamp() * 1000),
        attachments,
    )


def _customer_view(policy: ManagedPolicyRecord, attachments: int) -> PolicyView:
    return PolicyView(
        policy.name,
        policy.arn,
        policy.policy_id,
        policy.path,
        policy.default_version,
        policy.description,
        policy.document,
        policy.created_ms,
        policy.updated_ms,
        attachments,
    )


def merge_tags(
    existing: Sequence[tuple[str, str]], added: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Tag keys are case-sensitive in storage; a new value replaces the old one (IAM TagUser)."""
    merged = dict(existing)
    merged.update(added)
    return list(merged.items())


_OWNER_LABEL = {"user": "user", "group": "group", "role": "role"}


class IamService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        authorizer: Authorizer,
        seal: Callable[[str, str], bytes],
    ) -> None:
        self._db = db
        self._clock = clock
        self._authz = authorizer
        self._seal = seal

    # -- helpers -----------------------------------------------------------------------------
    def _require(
        self,
        ctx: CallContext,
        action: str,
        resource: str = "*",
        condition_keys: Mapping[str, ContextValue] | None = None,
    ) -> None:
        identity = ctx.identity
        if identity.is_session and identity.principal_type == "User":
            # GetSessionToken credentials without MFA cannot call IAM; AWS answers as if the
            # token were unknown (aws/aws-sdk-js#460, cloudyr/aws.iam#15).
            raise ServiceError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid",
                403,
            )
        self._authz.require(ctx, f"iam:{action}", resource, condition_keys=condition_keys)

    @staticmethod
    def _user(repo: IamRepository, ctx: CallContext, name: str) -> UserRecord:
        user = repo.user(ctx.account_id, name)
        if user is None:
            raise no_such_entity(f"The user with name {name} cannot be found.")
        return user

    @staticmethod
    def _group(repo: IamRepository, ctx: CallContext, name: str) -> GroupRecord:
        group = repo.group(ctx.account_id, name)
        if group is None:
            raise no_such_entity(f"The group with name {name} cannot be found.")
        return group

    @staticmethod
    def _role(repo: IamRepository, ctx: CallContext, name: str) -> RoleRecord:
        role = repo.role(ctx.account_id, name)
        if role is None:
            raise no_such_entity(f"The role with name {name} cannot be found.")
        return role

    def _owner(self, repo: IamRepository, ctx: CallContext, kind: str, name: str) -> str:
        """The stored (canonical) name of a user, group or role, or NoSuchEntity."""
        if kind == "user":
            return self._user(repo, ctx, name).name
        if kind == "group":
            return self._group(repo, ctx, name).name
        return self._role(repo, ctx, name).name

    def _owner_arn(self, ctx: CallContext, kind: str, name: str) -> str:
        """The owner's ARN for authorization, before it is known to exist: the stored path and
        name (names match ignoring case), or `/` and the name as given when there is none."""
        account = ctx.account_id
        with self._db.statement() as tx:
            repo = IamRepository(tx)
            if kind == "user":
                user = repo.user(account, name)
                return (
                    user_arn(account, user.path, user.name)
                    if user
                    else user_arn(account, "/", name)
                )
            if kind == "group":
                group = repo.group(account, name)
                return (
                    group_arn(account, group.path, group.name)
                    if group
                    else group_arn(account, "/", name)
                )
            role = repo.role(account, name)
            return role_arn(account, role.path, role.name) if role else role_arn(account, "/", name)

    @contextmanager
    def _writing(self) -> Iterator[IamRepository]:
        with self._db.transaction(write=True) as tx:
            repo = IamRepository(tx)
            # The change counter's row lock first: on PostgreSQL it orders concurrent IAM writers,
            # so the checks made here (key quota, conflicts, sizes) see earlier commits.
            repo.bump_generation()
            yield repo

    def _insert(self, write: Callable[[IamRepository], None], conflict: ServiceError) -> None:
        try:
            with self._writing() as repo:
                write(repo)
        except StoreConflict:
            # Another worker or node created the same name between our check and our insert.
            raise conflict from None

    # -- users -------------------------------------------------------------------------------
    def create_user(
        self, ctx: CallContext, name: str, path: str, tags: Sequence[tuple[str, str]]
    ) -> UserRecord:
        arn = user_arn(ctx.account_id, path, name)
        self._require(ctx, "CreateUser", arn, request_tag_keys(tags) or None)
        record = UserRecord(
            ctx.account_id, name, new_unique_id("AIDA"), path, tuple(tags), self._clock.now_ms()
        )
        exists = _already_exists(f"User with name {name} already exists.")

        def write(repo: IamRepository) -> None:
            if repo.user(ctx.account_id, name) is not None:
                raise exists
            repo.insert_user(record)

        self._insert(write, exists)
        return record

    def root_created_ms(self, ctx: CallContext) -> int:
        """When the caller's account (whose root user has no UserRecord) was created."""
        with self._db.statement() as tx:
            return IamRepository(tx).account_created_ms(ctx.account_id) or 0

    def get_user(self, ctx: CallContext, name: str | None) -> UserRecord | None:
        """`name` None: the calling user; None back for the account's root user (no record)."""
        if name is None:
            if ctx.identity.is_root:
                return None
            name = self._key_owner(ctx, None)
        self._require(ctx, "GetUser", self._owner_arn(ctx, "user", name))
        with self._db.statement() as tx:
            return self._user(IamRepository(tx), ctx, name)

    def list_users(self, ctx: CallContext, path_prefix: str) -> list[UserRecord]:
        self._require(ctx, "ListUsers")
        with self._db.transaction() as tx:
            return IamRepository(tx).users(ctx.account_id, path_prefix)

    def delete_user(self, ctx: CallContext, name: str) -> None:
        self._require(ctx, "DeleteUser", self._owner_arn(ctx, "user", name))
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            if repo.user_access_keys(ctx.account_id, user.name):
                raise _delete_conflict("Cannot delete entity, must delete access keys first.")
            if ConsoleRepository(repo.tx).login_profile(ctx.account_id, user.name):
                raise _delete_conflict("Cannot delete entity, must delete login profile first.")
            if repo.inline_policy_names(ctx.account_id, "user", user.name):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(ctx.account_id, "user", user.name):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            if repo.groups_for_user(ctx.account_id, user.name):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            repo.delete_user(ctx.account_id, user.name)

    def tag_user(self, ctx: CallContext, name: str, tags: Sequence[tuple[str, str]]) -> None:
        self._require(ctx, "TagUser", self._owner_arn(ctx, "user", name), request_tag_keys(tags))
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            merged = merge_tags(user.tags, tags)
            _check_tag_count(merged)
            repo.set_user_tags(ctx.account_id, user.name, merged)

    def untag_user(self, ctx: CallContext, name: str, keys: Sequence[str]) -> None:
        self._require(
            ctx, "UntagUser", self._owner_arn(ctx, "user", name), {"aws:TagKeys": list(keys)}
        )
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            drop = set(keys)
            repo.set_user_tags(
                ctx.account_id, user.name, [t for t in user.tags if t[0] not in drop]
            )

    def user_tags(self, ctx: CallContext, name: str) -> tuple[tuple[str, str], ...]:
        self._require(ctx, "ListUserTags", self._owner_arn(ctx, "user", name))
        with self._db.statement() as tx:
            return self._user(IamRepository(tx), ctx, name).tags

    # -- access keys -------------------------------------------------------------------------
    def _key_owner(self, ctx: CallContext, name: str | None) -> str:
        if name is not None:
            return name
        identity = ctx.identity
        if identity.owner_kind == "user":
            return identity.owner_name
        # A role session without UserName: AWS's words (aws/aws-cli issues quoting GetUser).
        # The root user's own keys are operator-managed in secretsd, so root gets the same.
        raise _err(
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )

    def create_access_key(self, ctx: CallContext, name: str | None) -> NewAccessKey:
        name = self._key_owner(ctx, name)
        self._require(ctx, "CreateAccessKey", self._owner_arn(ctx, "user", name))
        access_key_id = new_access_key_id()
        secret = new_secret_access_key()
        sealed = self._seal(access_key_id, secret)
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            if len(repo.user_access_keys(ctx.account_id, user.name)) >= ACCESS_KEYS_PER_USER:
                raise _limit(f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")
            key = UserAccessKey(
                access_key_id,
                ctx.account_id,
                user.name,
                user_arn(ctx.account_id, user.path, user.name),
                sealed,
                "Active",
                self._clock.now_ms(),
            )
            repo.insert_access_key(key)
        return NewAccessKey(key, secret)

    def list_access_keys(self, ctx: CallContext, name: str | None) -> list[UserAccessKey]:
        name = self._key_owner(ctx, name)
        self._require(ctx, "ListAccessKeys", self._owner_arn(ctx, "user", name))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            user = self._user(repo, ctx, name)
            return repo.user_access_keys(ctx.account_id, user.name)

    def _users_key(
        self, repo: IamRepository, ctx: CallContext, name: str, access_key_id: str
    ) -> UserAccessKey:
        user = self._user(repo, ctx, name)
        key = repo.access_key(access_key_id)
        if key is None or key.account_id != ctx.account_id or key.user_name != user.name:
            raise no_such_entity(f"The Access Key with id {access_key_id} cannot be found.")
        return key

    def access_key_owner(self, ctx: CallContext, access_key_id: str) -> str:
        """GetAccessKeyLastUsed: the user a key of this account belongs to (use is not tracked)."""
        with self._db.statement() as tx:
            key = IamRepository(tx).access_key(access_key_id)
        if key is None or key.account_id != ctx.account_id or key.user_name is None:
            # Unverified wording (emulators'); AWS may answer AccessDenied instead.
            raise no_such_entity(f"The Access Key with id {access_key_id} cannot be found.")
        self._require(ctx, "GetAccessKeyLastUsed", key.principal_arn)
        return key.user_name

    def update_access_key(
        self, ctx: CallContext, name: str | None, access_key_id: str, status: str
    ) -> None:
        name = self._key_owner(ctx, name)
        self._require(ctx, "UpdateAccessKey", self._owner_arn(ctx, "user", name))
        with self._writing() as repo:
            key = self._users_key(repo, ctx, name, access_key_id)
            repo.set_access_key_status(key.access_key_id, status)

    def delete_access_key(self, ctx: CallContext, name: str | None, access_key_id: str) -> None:
        name = self._key_owner(ctx, name)
        self._require(ctx, "DeleteAccessKey", self._owner_arn(ctx, "user", name))
        with self._writing() as repo:
            key = self._users_key(repo, ctx, name, access_key_id)
            repo.delete_access_key(key.access_key_id)

    # -- login profiles (console passwords) --------------------------------------------------
    def _profile_user(self, ctx: CallContext, action: str, name: str | None) -> str:
        name = self._key_owner(ctx, name)
        self._require(ctx, action, self._owner_arn(ctx, "user", name))
        return name

    def create_login_profile(
        self, ctx: CallContext, name: str | None, password: str | None, reset_required: bool
    ) -> LoginProfileRecord:
        name = self._profile_user(ctx, "CreateLoginProfile", name)
        if password is None:
            # Without a password AWS makes a profile for sign-in methods secretsd does not
            # have (root-managed passkeys); a console password is what this needs.
            raise _err("ValidationError", "Password is required.")
        check_password_policy(password)
        hashed = hash_password(password)
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            console = ConsoleRepository(repo.tx)
            if console.login_profile(ctx.account_id, user.name) is not None:
                raise _already_exists(f"Login Profile for user {user.name} already exists.")
            record = LoginProfileRecord(
                ctx.account_id, user.name, hashed, reset_required, self._clock.now_ms()
            )
            console.insert_login_profile(record)
        return record

    def get_login_profile(self, ctx: CallContext, name: str | None) -> LoginProfileRecord:
        name = self._profile_user(ctx, "GetLoginProfile", name)
        with self._db.transaction() as tx:
            user = self._user(IamRepository(tx), ctx, name)
            profile = ConsoleRepository(tx).login_profile(ctx.account_id, user.name)
        if profile is None:
            raise no_such_entity(f"Login Profile for User {user.name} cannot be found.")
        return profile

    def update_login_profile(
        self, ctx: CallContext, name: str, password: str | None, reset_required: bool | None
    ) -> None:
        name = self._profile_user(ctx, "UpdateLoginProfile", name)
        hashed = None
        if password is not None:
            check_password_policy(password)
            hashed = hash_password(password)
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            console = ConsoleRepository(repo.tx)
            if console.login_profile(ctx.account_id, user.name) is None:
                raise no_such_entity(f"Login Profile for User {user.name} cannot be found.")
            console.update_login_profile(ctx.account_id, user.name, hashed, reset_required)

    def delete_login_profile(self, ctx: CallContext, name: str | None) -> None:
        name = self._profile_user(ctx, "DeleteLoginProfile", name)
        with self._writing() as repo:
            user = self._user(repo, ctx, name)
            console = ConsoleRepository(repo.tx)
            if console.login_profile(ctx.account_id, user.name) is None:
                raise no_such_entity(f"Login Profile for User {user.name} cannot be found.")
            console.delete_login_profile(ctx.account_id, user.name)

    # -- groups ------------------------------------------------------------------------------
    def create_group(self, ctx: CallContext, name: str, path: str) -> GroupRecord:
        self._require(ctx, "CreateGroup", group_arn(ctx.account_id, path, name))
        record = GroupRecord(
            ctx.account_id, name, new_unique_id("AGPA"), path, self._clock.now_ms()
        )
        exists = _already_exists(f"Group with name {name} already exists.")

        def write(repo: IamRepository) -> None:
            if repo.group(ctx.account_id, name) is not None:
                raise exists
            repo.insert_group(record)

        self._insert(write, exists)
        return record

    def get_group(self, ctx: CallContext, name: str) -> tuple[GroupRecord, list[UserRecord]]:
        self._require(ctx, "GetGroup", self._owner_arn(ctx, "group", name))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            group = self._group(repo, ctx, name)
            return group, repo.group_members(ctx.account_id, group.name)

    def list_groups(self, ctx: CallContext, path_prefix: str) -> list[GroupRecord]:
        self._require(ctx, "ListGroups")
        with self._db.transaction() as tx:
            return IamRepository(tx).groups(ctx.account_id, path_prefix)

    def list_groups_for_user(self, ctx: CallContext, name: str) -> list[GroupRecord]:
        self._require(ctx, "ListGroupsForUser", self._owner_arn(ctx, "user", name))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            user = self._user(repo, ctx, name)
            return repo.groups_for_user(ctx.account_id, user.name)

    def delete_group(self, ctx: CallContext, name: str) -> None:
        self._require(ctx, "DeleteGroup", self._owner_arn(ctx, "group", name))
        with self._writing() as repo:
            group = self._group(repo, ctx, name)
            if repo.member_count(ctx.account_id, group.name):
                raise _delete_conflict("Cannot delete entity, must remove users from group first.")
            if repo.inline_policy_names(ctx.account_id, "group", group.name):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(ctx.account_id, "group", group.name):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_group(ctx.account_id, group.name)

    def add_user_to_group(self, ctx: CallContext, group_name: str, user_name: str) -> None:
        self._require(ctx, "AddUserToGroup", self._owner_arn(ctx, "group", group_name))
        with self._writing() as repo:
            group = self._group(repo, ctx, group_name)
            user = self._user(repo, ctx, user_name)
            repo.add_member(ctx.account_id, group.name, user.name)

    def remove_user_from_group(self, ctx: CallContext, group_name: str, user_name: str) -> None:
        self._require(ctx, "RemoveUserFromGroup", self._owner_arn(ctx, "group", group_name))
        with self._writing() as repo:
            group = self._group(repo, ctx, group_name)
            user = self._user(repo, ctx, user_name)
            if not repo.remove_member(ctx.account_id, group.name, user.name):
                # Not a member: unverified wording (moto's).
                raise no_such_entity(f"User {user.name} not in group {group.name}")

    # -- roles -------------------------------------------------------------------------------
    def create_role(
        self,
        ctx: CallContext,
        name: str,
        path: str,
        trust_policy: str,
        description: str | None,
        max_session_seconds: int,
        tags: Sequence[tuple[str, str]],
    ) -> RoleRecord:
        arn = role_arn(ctx.account_id, path, name)
        self._require(ctx, "CreateRole", arn, request_tag_keys(tags) or None)
        _check_session_duration(max_session_seconds)
        check_trust_policy(trust_policy)
        record = RoleRecord(
            ctx.account_id,
            name,
            new_unique_id("AROA"),
            path,
            trust_policy,
            description,
            max_session_seconds,
            tuple(tags),
            self._clock.now_ms(),
        )
        exists = _already_exists(f"Role with name {name} already exists.")

        def write(repo: IamRepository) -> None:
            if repo.role(ctx.account_id, name) is not None:
                raise exists
            check_trust_principals(repo, trust_policy)
            repo.insert_role(record)

        self._insert(write, exists)
        return record

    def get_role(self, ctx: CallContext, name: str) -> RoleRecord:
        self._require(ctx, "GetRole", self._owner_arn(ctx, "role", name))
        with self._db.statement() as tx:
            return self._role(IamRepository(tx), ctx, name)

    def list_roles(self, ctx: CallContext, path_prefix: str) -> list[RoleRecord]:
        self._require(ctx, "ListRoles")
        with self._db.transaction() as tx:
            return IamRepository(tx).roles(ctx.account_id, path_prefix)

    def delete_role(self, ctx: CallContext, name: str) -> None:
        self._require(ctx, "DeleteRole", self._owner_arn(ctx, "role", name))
        with self._writing() as repo:
            role = self._role(repo, ctx, name)
            if repo.inline_policy_names(ctx.account_id, "role", role.name):
                raise _delete_conflict("Cannot delete entity, must delete policies first.")
            if repo.attached(ctx.account_id, "role", role.name):
                raise _delete_conflict("Cannot delete entity, must detach all policies first.")
            repo.delete_role(ctx.account_id, role.name)

    def update_trust_policy(self, ctx: CallContext, name: str, document: str) -> None:
        self._require(ctx, "UpdateAssumeRolePolicy", self._owner_arn(ctx, "role", name))
        with self._writing() as repo:
            role = self._role(repo, ctx, name)
            check_trust_policy(document)
            check_trust_principals(repo, document)
            repo.set_trust_policy(ctx.account_id, role.name, document)

    def tag_role(self, ctx: CallContext, name: str, tags: Sequence[tuple[str, str]]) -> None:
        self._require(ctx, "TagRole", self._owner_arn(ctx, "role", name), request_tag_keys(tags))
        with self._writing() as repo:
            role = self._role(repo, ctx, name)
            merged = merge_tags(role.tags, tags)
            _check_tag_count(merged)
            repo.set_role_tags(ctx.account_id, role.name, merged)

    def untag_role(self, ctx: CallContext, name: str, keys: Sequence[str]) -> None:
        self._require(
            ctx, "UntagRole", self._owner_arn(ctx, "role", name), {"aws:TagKeys": list(keys)}
        )
        with self._writing() as repo:
            role = self._role(repo, ctx, name)
            drop = set(keys)
            repo.set_role_tags(
                ctx.account_id, role.name, [t for t in role.tags if t[0] not in drop]
            )

    def role_tags(self, ctx: CallContext, name: str) -> tuple[tuple[str, str], ...]:
        self._require(ctx, "ListRoleTags", self._owner_arn(ctx, "role", name))
        with self._db.statement() as tx:
            return self._role(IamRepository(tx), ctx, name).tags

    # -- inline policies ---------------------------------------------------------------------
    def put_inline_policy(
        self, ctx: CallContext, kind: str, owner: str, policy_name: str, document: str
    ) -> None:
        self._require(ctx, f"Put{kind.title()}Policy", self._owner_arn(ctx, kind, owner))
        with self._writing() as repo:
            owner = self._owner(repo, ctx, kind, owner)
            check_policy(document)
            existing = repo.inline_policy(ctx.account_id, kind, owner, policy_name)
            stored_name = existing[0] if existing is not None else policy_name
            total = _size(document)
            for other in repo.inline_policy_names(ctx.account_id, kind, owner):
                if other != stored_name:
                    found = repo.inline_policy(ctx.account_id, kind, owner, other)
                    total += _size(found[1]) if found else 0
            limit = INLINE_POLICY_LIMITS[kind]
            if total > limit:
                raise _limit(
                    f"Maximum policy size of {limit} bytes exceeded for {_OWNER_LABEL[kind]} {owner}"
                )
            repo.put_inline_policy(ctx.account_id, kind, owner, stored_name, document)

    def get_inline_policy(
        self, ctx: CallContext, kind: str, owner: str, policy_name: str
    ) -> tuple[str, str, str]:
        """(owner name, policy name, document)."""
        self._require(ctx, f"Get{kind.title()}Policy", self._owner_arn(ctx, kind, owner))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            owner = self._owner(repo, ctx, kind, owner)
            found = repo.inline_policy(ctx.account_id, kind, owner, policy_name)
            if found is None:
                raise no_such_entity(
                    f"The {_OWNER_LABEL[kind]} policy with name {policy_name} cannot be found."
                )
            return owner, found[0], found[1]

    def delete_inline_policy(
        self, ctx: CallContext, kind: str, owner: str, policy_name: str
    ) -> None:
        self._require(ctx, f"Delete{kind.title()}Policy", self._owner_arn(ctx, kind, owner))
        with self._writing() as repo:
            owner = self._owner(repo, ctx, kind, owner)
            found = repo.inline_policy(ctx.account_id, kind, owner, policy_name)
            if found is None:
                raise no_such_entity(
                    f"The {_OWNER_LABEL[kind]} policy with name {policy_name} cannot be found."
                )
            repo.delete_inline_policy(ctx.account_id, kind, owner, found[0])

    def list_inline_policies(self, ctx: CallContext, kind: str, owner: str) -> list[str]:
        self._require(ctx, f"List{kind.title()}Policies", self._owner_arn(ctx, kind, owner))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            owner = self._owner(repo, ctx, kind, owner)
            return repo.inline_policy_names(ctx.account_id, kind, owner)

    # -- managed policies --------------------------------------------------------------------
    def _policy(self, repo: IamRepository, ctx: CallContext, arn: str) -> PolicyView | None:
        aws = aws_managed_policy(arn)
        if aws is not None:
            return _aws_view(aws, repo.attachment_counts(ctx.account_id).get(arn, 0))
        record = repo.managed_policy(arn)
        if record is None or record.account_id != ctx.account_id:
            return None
        return _customer_view(record, repo.attachment_count(arn))

    def create_policy(
        self,
        ctx: CallContext,
        name: str,
        path: str,
        document: str,
        description: str | None,
    ) -> PolicyView:
        arn = policy_arn(ctx.account_id, path, name)
        self._require(ctx, "CreatePolicy", arn)
        check_policy(document)
        if _size(document) > MANAGED_POLICY_LIMIT:
            raise _limit(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_LIMIT}")
        now = self._clock.now_ms()
        record = ManagedPolicyRecord(
            arn, ctx.account_id, name, new_unique_id("ANPA"), path, description, document, "v1",
            now, now,
        )  # fmt: skip
        exists = _already_exists(
            f"A policy called {name} already exists. Duplicate names are not allowed."
        )

        def write(repo: IamRepository) -> None:
            if repo.managed_policy_by_name(ctx.account_id, name) is not None:
                raise exists
            repo.insert_managed_policy(record)

        self._insert(write, exists)
        return _customer_view(record, 0)

    def get_policy(self, ctx: CallContext, arn: str) -> PolicyView:
        self._require(ctx, "GetPolicy", arn)
        with self._db.transaction() as tx:
            view = self._policy(IamRepository(tx), ctx, arn)
        if view is None:
            raise no_such_entity(f"Policy {arn} was not found.")
        return view

    def get_policy_version(self, ctx: CallContext, arn: str, version_id: str) -> PolicyView:
        self._require(ctx, "GetPolicyVersion", arn)
        with self._db.transaction() as tx:
            view = self._policy(IamRepository(tx), ctx, arn)
        if view is None:
            raise no_such_entity(f"Policy {arn} was not found.")
        if version_id != view.default_version_id:
            # Only the default version is kept; wording seen in an emulator, unverified.
            raise no_such_entity(
                f"Policy {arn} version {version_id} does not exist or is not attachable."
            )
        return view

    def list_policy_versions(self, ctx: CallContext, arn: str) -> PolicyView:
        """The one version kept (the default); ListPolicyVersions shows it alone."""
        self._require(ctx, "ListPolicyVersions", arn)
        with self._db.transaction() as tx:
            view = self._policy(IamRepository(tx), ctx, arn)
        if view is None:
            raise no_such_entity(f"Policy {arn} was not found.")
        return view

    def list_policies(
        self, ctx: CallContext, scope: str, only_attached: bool, path_prefix: str
    ) -> list[PolicyView]:
        self._require(ctx, "ListPolicies")
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            counts = repo.attachment_counts(ctx.account_id)
            views: list[PolicyView] = []
            if scope in ("All", "AWS"):
                views += [_aws_view(p, counts.get(p.arn, 0)) for p in aws_managed_policies()]
            if scope in ("All", "Local"):
                views += [
                    _customer_view(p, counts.get(p.arn, 0))
                    for p in repo.managed_policies(ctx.account_id)
                ]
        return [
            v
            for v in sorted(views, key=lambda v: (v.name.lower(), v.arn))
            if v.path.startswith(path_prefix) and (not only_attached or v.attachment_count)
        ]

    def delete_policy(self, ctx: CallContext, arn: str) -> None:
        self._require(ctx, "DeletePolicy", arn)
        with self._writing() as repo:
            if arn.startswith(_AWS_POLICY_PREFIX):
                # AWS managed policies cannot be deleted (unverified wording: AWS refuses with
                # AccessDenied/InvalidInput; NoSuchEntity keeps them untouched here).
                raise no_such_entity(f"Policy {arn} was not found.")
            record = repo.managed_policy(arn)
            if record is None or record.account_id != ctx.account_id:
                raise no_such_entity(f"Policy {arn} was not found.")
            if repo.attachment_count(arn):
                raise _delete_conflict("Cannot delete a policy attached to entities.")
            repo.delete_managed_policy(arn)

    # -- attachments -------------------------------------------------------------------------
    def attach(self, ctx: CallContext, kind: str, owner: str, arn: str) -> None:
        self._require(
            ctx,
            f"Attach{kind.title()}Policy",
            self._owner_arn(ctx, kind, owner),
            {"iam:PolicyARN": arn},
        )
        if _POLICY_ARN.match(arn) is None:
            # The model only bounds the length; IAM refuses a malformed ARN this way.
            raise _err("InvalidInput", f"ARN {arn} is not valid.")
        with self._writing() as repo:
            owner = self._owner(repo, ctx, kind, owner)
            if self._policy(repo, ctx, arn) is None:
                raise no_such_entity(f"Policy {arn} does not exist or is not attachable.")
            repo.attach(ctx.account_id, kind, owner, arn)

    def detach(self, ctx: CallContext, kind: str, owner: str, arn: str) -> None:
        self._require(
            ctx,
            f"Detach{kind.title()}Policy",
            self._owner_arn(ctx, kind, owner),
            {"iam:PolicyARN": arn},
        )
        with self._writing() as repo:
            owner = self._owner(repo, ctx, kind, owner)
            if not repo.detach(ctx.account_id, kind, owner, arn):
                raise no_such_entity(f"Policy {arn} was not found.")

    def list_attached(
        self, ctx: CallContext, kind: str, owner: str, path_prefix: str
    ) -> list[tuple[str, str]]:
        """[(policy name, policy ARN)] attached to a user, group or role."""
        self._require(ctx, f"ListAttached{kind.title()}Policies", self._owner_arn(ctx, kind, owner))
        with self._db.transaction() as tx:
            repo = IamRepository(tx)
            owner = self._owner(repo, ctx, kind, owner)
            out = []
            for arn in repo.attached(ctx.account_id, kind, owner):
                match = _POLICY_ARN.match(arn)
                path, name = (match.group(2), match.group(3)) if match else ("/", arn)
                if path.startswith(path_prefix):
                    out.append((name, arn))
            return out


def check_trust_policy(document: str) -> None:
    if _size(document) > TRUST_POLICY_LIMIT:
        raise _limit(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_LIMIT}")
    check_policy(document, "trust")


def _aws_principals(document: str) -> list[str]:
    """The "AWS" principals of a (valid) trust policy, in document order."""
    doc = json.loads(document)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    found: list[str] = []
    for statement in statements:
        for element in ("Principal", "NotPrincipal"):
            principal = statement.get(element)
            if isinstance(principal, dict):
                value = principal.get("AWS", [])
                found += [value] if isinstance(value, str) else list(value)
    return found


def check_trust_principals(repo: IamRepository, document: str) -> None:
    """IAM resolves the principals of a trust policy when it is saved: one that does not exist
    (an unknown account, user or role, or an ARN with a wildcard) makes it malformed, e.g.
    `Invalid principal in policy: "AWS":"arn:aws:iam::085167882865:user/cloud_user"` (400, a
    CreateRole error quoted in a public script; others quote the same for roles and roots)."""
    for principal in _aws_principals(document):
        if principal != "*" and not _principal_exists(repo, principal):
            raise _malformed(f'Invalid principal in policy: "AWS":"{principal}"')


def _principal_exists(repo: IamRepository, principal: str) -> bool:
    if _ACCOUNT_ID.fullmatch(principal):
        return repo.account_created_ms(principal) is not None
    match = _PRINCIPAL_ARN.fullmatch(principal)
    if match is None or "*" in principal or "?" in principal:
        return False
    service, account, kind, rest = match.groups()
    if service == "iam" and kind == "root" and rest is None:
        return repo.account_created_ms(account) is not None
    if rest is None:
        return False
    if service == "iam" and kind == "user":
        user = repo.user(account, rest.rsplit("/", 1)[-1])
        return user is not None and user_arn(account, user.path, user.name) == principal
    if service == "iam" and kind == "role":
        role = repo.role(account, rest.rsplit("/", 1)[-1])
        return role is not None and role_arn(account, role.path, role.name) == principal
    if service == "sts" and kind == "assumed-role" and rest.count("/") == 1:
        return repo.role(account, rest.split("/", 1)[0]) is not None
    return False


def _check_session_duration(seconds: int) -> None:
    if not MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS:
        # The model allows 3600..43200 already; kept for callers that bypass it.
        raise _err(
            "ValidationError",
            f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to"
            f" satisfy constraint: Member must have value "
            f"{'greater than or equal to 3600' if seconds < MIN_SESSION_SECONDS else 'less than or equal to 43200'}",
        )


_PASSWORD_CLASSES = (
    re.compile(r"[A-Z]"),
    re.compile(r"[a-z]"),
    re.compile(r"[0-9]"),
    re.compile(r"[^A-Za-z0-9]"),
)


def check_password_policy(password: str) -> None:
    """IAM's default password policy (no account policy is set): at least 8 characters and
    three of uppercase, lowercase, digits and symbols."""
    classes = sum(1 for c in _PASSWORD_CLASSES if c.search(password))
    if len(password) < 8 or classes < 3:
        raise _err(
            "PasswordPolicyViolation", "Password does not conform to the account password policy."
        )


def _check_tag_count(tags: Sequence[tuple[str, str]]) -> None:
    if len(tags) > 50:
        # IAM's quota of 50 tags per entity (wording unverified).
        raise _limit("The number of tags has reached the maximum limit.")
