"""Call contexts for tests that drive the service layer in-process."""

from __future__ import annotations

from secretsd.auth.identity import Identity
from secretsd.service.context import CallContext

# The account's root user: no identity policy limits it, so tests using it exercise the store
# and the service's rules, not permissions (tests/e2e/test_permissions.py does those).
ROOT_CTX = CallContext(
    Identity(
        account_id="111122223333",
        arn="arn:aws:iam::111122223333:root",
        principal_arn="arn:aws:iam::111122223333:root",
        principal_type="Account",
        userid="111122223333",
        owner_kind="root",
        owner_name="",
        access_key_id="AKIAEXAMPLEROOT00000",
    ),
    "us-east-1",
)
