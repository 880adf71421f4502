"""Headless Chromium (Debian's, installed by scripts/test.sh) driven by Playwright, and the
console users the browser tests sign in as."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from playwright.sync_api import Browser, Page, sync_playwright

from support.clients import make_client
from support.server import Credentials, ServerProcess

# The screenshots docs/console.md shows: rewritten only when asked (SECRETSD_UPDATE_SCREENSHOTS=1),
# so a test run leaves the committed files alone; otherwise they go to a temporary directory.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
UPDATE_SCREENSHOTS = "SECRETSD_UPDATE_SCREENSHOTS"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "chromium is not installed: scripts/test.sh installs Debian's chromium package"
        )
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class ConsoleUser:
    account_id: str
    name: str
    password: str
    credentials: Credentials


def iam_client(server: ServerProcess, credentials: Credentials | None = None) -> Any:
    return make_client(
        boto3.session.Session(), "iam", server.endpoint, credentials or server.credentials
    )


def make_console_user(
    server: ServerProcess, name: str, password: str, policy_arns: list[str]
) -> ConsoleUser:
    """An IAM user with a console password and an access key, made through the IAM API."""
    iam = iam_client(server)
    iam.create_user(UserName=name)
    for arn in policy_arns:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    iam.create_login_profile(UserName=name, Password=password)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = make_client(boto3.session.Session(), "sts", server.endpoint, server.credentials)
    account = sts.get_caller_identity()["Account"]
    return ConsoleUser(
        account, name, password, Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    )


def sign_in(
    page: Page, server: ServerProcess, user: ConsoleUser, region: str = "us-east-1"
) -> None:
    page.goto(f"{server.endpoint}/console/")
    page.get_by_label("Account ID (12 digits)").fill(user.account_id)
    page.get_by_label("IAM user name").fill(user.name)
    page.get_by_label("Password").fill(user.password)
    page.get_by_label("Region").fill(region)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/secrets")


def updating_docs_screenshots() -> bool:
    return os.environ.get(UPDATE_SCREENSHOTS, "") not in ("", "0")


@dataclass(frozen=True)
class Screenshots:
    """`shot(page, name)`: a full-page PNG of the page as `name`.png in `directory` (the
    `shot` fixture: docs/console/ when updating them, else a temporary directory). Checked
    every time, so the screenshot code cannot rot between updates."""

    directory: Path

    def __call__(self, page: Page, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, path
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width > 0 and height > 0, path  # the IHDR chunk's size: an image, not nothing
