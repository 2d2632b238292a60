"""Connecting to a Label Studio server: any server the user names, else the managed one.

Two kinds of API key exist. A legacy token is 40 hex characters sent as `Token <key>`; a
personal access token (PAT) is a JWT *refresh* token that must be exchanged at
`/api/token/refresh/` for short-lived access tokens sent as `Bearer <access>`. The SDK's
`LabelStudio(base_url, api_key)` tells them apart the same way we do here (a key that decodes
as a JWT is a PAT, anything else is legacy); we detect the kind up front only to give clear
errors (expired PAT, an access token pasted instead of the PAT). Keys never reach output:
every error message passes through `Connection.redact`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson

from newsstance.errors import UserError

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
CLIENT_TIMEOUT = 600.0  # big exports take minutes; the SDK default (60 s) is too short

TokenKind = Literal["legacy", "pat"]


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """Claims of a JWT without verifying it (we only need its type and expiry), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_kind(token: str) -> TokenKind:
    """`pat` for a personal access token (JWT refresh token), `legacy` otherwise; refuse unusable JWTs."""
    claims = _jwt_claims(token)
    if claims is None:
        return "legacy"
    if claims.get("token_type") == "access":
        raise UserError(
            "that API key is a short-lived access token; use the personal access token "
            "(Account & Settings > Personal Access Token) or a legacy token"
        )
    exp = claims.get("exp")
    if exp is None:
        raise UserError("that personal access token has no expiry and Label Studio will refuse it; create a new one")
    if float(exp) < time.time():
        raise UserError("that personal access token has expired; create a new one in Label Studio")
    return "pat"


def redact(text: str, *secrets: str) -> str:
    """Replace every secret (and any Authorization header value) in `text` with ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(?i)((?:token|bearer)\s+)[A-Za-z0-9._\-]{20,}", r"\1***", text)


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to authenticate; `repr` hides the key."""

    url: str
    api_key: str = field(repr=False)
    kind: TokenKind = "legacy"
    managed: bool = False

    def redact(self, text: str) -> str:
        return redact(text, self.api_key)

    def client(self, timeout: float = CLIENT_TIMEOUT) -> LabelStudio:
        from label_studio_sdk import LabelStudio

        with self.errors("connecting"):
            # Trailing slash: the SDK joins the PAT refresh path with urljoin, which would drop
            # the last segment of a server mounted under a path (https://host/ls).
            return LabelStudio(base_url=f"{self.url}/", api_key=self.api_key, timeout=timeout)

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn SDK/HTTP failures into one readable, redacted UserError line."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as exc:
            raise UserError(
                self.redact(
                    f"Label Studio refused {action} at {self.url}: {_describe_api_error(exc.status_code, exc.body)}"
                )
            ) from None
        except httpx.ConnectError:
            raise UserError(f"cannot reach Label Studio at {self.url} ({action}); is it running?") from None
        except httpx.TimeoutException:
            raise UserError(f"Label Studio at {self.url} timed out ({action})") from None
        except httpx.HTTPError as exc:
            raise UserError(self.redact(f"HTTP error talking to {self.url} ({action}): {exc}")) from None


def _describe_api_error(status: int | None, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail or body)
    if status == 401 and "legacy token" in text.lower():
        return f"401 {text} (use a personal access token, or enable legacy tokens in the organisation)"
    if status == 401:
        return f"401 {text} (check the API key)"
    return f"{status} {text[:500]}"


def connection(
    url: str | None = None,
    api_key: str | None = None,
    data_dir: Path | None = None,
) -> Connection:
    """`--url/--api-key`, else `$LABEL_STUDIO_URL`/`$LABEL_STUDIO_API_KEY`, else the managed server."""
    url = url or os.environ.get(URL_ENV) or None
    api_key = api_key or os.environ.get(KEY_ENV) or None
    if url and api_key:
        return Connection(url=url.rstrip("/"), api_key=api_key, kind=token_kind(api_key))
    if url or api_key:
        missing = "--api-key (or LABEL_STUDIO_API_KEY)" if url else "--url (or LABEL_STUDIO_URL)"
        raise UserError(f"a Label Studio URL needs an API key and vice versa: also pass {missing}")
    from newsstance.studio.server import ManagedServer

    server = ManagedServer(data_dir)
    status = server.status()
    if not status.running or status.url is None:
        raise UserError(
            "no Label Studio server: run `newsstance studio up`, or pass --url and --api-key "
            f"(or set {URL_ENV} and {KEY_ENV})"
        )
    return Connection(url=status.url, api_key=server.api_key, kind="legacy", managed=True)


def check(conn: Connection) -> dict[str, Any]:
    """Authenticate once (whoami) so a bad key fails early with a clear message; returns the user."""
    client = conn.client()
    with conn.errors("the API key"):
        return client.users.whoami().model_dump()


def create_personal_access_token(conn: Connection) -> str:
    """A new PAT for the connected user (needs `api_tokens_enabled` in the organisation)."""
    client = conn.client()
    with conn.errors("creating a personal access token"):
        return client.tokens.create().token


def invite_user(conn: Connection, email: str, password: str) -> Connection:
    """Add an annotator the way a person would: sign up with the organisation's invite link, log in,
    read the new user's legacy token. Returns a connection acting as that user."""
    with conn.errors("creating an invite link"), httpx.Client(base_url=conn.url, timeout=60) as admin:
        response = admin.get(
            "/api/invite",
            headers={"Authorization": f"Token {conn.api_key}"}
            if conn.kind == "legacy"
            else {"Authorization": f"Bearer {_access_token(conn)}"},
        )
        response.raise_for_status()
        invite_url = response.json()["invite_url"]
    with conn.errors(f"signing up {email}"), httpx.Client(base_url=conn.url, timeout=60) as browser:
        browser.get(invite_url).raise_for_status()
        form = {
            "email": email,
            "password": password,
            "csrfmiddlewaretoken": browser.cookies.get("csrftoken", ""),
            "allow_newsletters": "false",
        }
        browser.post(invite_url, data=form, headers={"Referer": conn.url + invite_url})
        if browser.get("/api/current-user/whoami").status_code != 200:
            _login(browser, conn.url, email, password)
        token_response = browser.get("/api/current-user/token")
        if token_response.status_code != 200:
            raise UserError(f"could not sign up or log in {email} at {conn.url} (status {token_response.status_code})")
        token = token_response.json()["token"]
    return Connection(url=conn.url, api_key=token, kind="legacy")


def _login(browser: httpx.Client, url: str, email: str, password: str) -> None:
    browser.get("/user/login/")
    browser.post(
        "/user/login/",
        data={"email": email, "password": password, "csrfmiddlewaretoken": browser.cookies.get("csrftoken", "")},
        headers={"Referer": f"{url}/user/login/"},
    )


def _access_token(conn: Connection) -> str:
    response = httpx.post(f"{conn.url}/api/token/refresh/", json={"refresh": conn.api_key}, timeout=60)
    response.raise_for_status()
    return str(response.json()["access"])
