"""Pseudonymous annotator ids: records, gold and releases never carry an e-mail address.

An annotator is `annotator-<Label Studio user id>`: stable for everyone pulling from the same
server and meaningless without access to it. A `completed_by` that carries only an e-mail
(older exports, other tools) becomes `annotator-e<keyed hash>`, keyed by a random secret kept
in the private mapping file, so the id cannot be recomputed from a guessed address.

The mapping pseudonym -> e-mail lives in `annotations/annotators.private.json` (git-ignored,
mode 0600), merged on every pull/import; `email_of` reads it for people who may see it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import orjson

from newsstance.paths import ANNOTATIONS_DIR, in_project
from newsstance.records import atomic_write

PRIVATE_NAME = "annotators.private.json"
PREFIX = "annotator-"


def private_path(annotations_dir: Path | None = None) -> Path:
    return (annotations_dir or in_project(ANNOTATIONS_DIR)) / PRIVATE_NAME


class Identities:
    """Pseudonyms of one project's annotators and the private mapping back to e-mails."""

    def __init__(self, path: Path | None, users: Mapping[int, str] | None = None):
        self.path = path
        self.users = dict(users or {})  # Label Studio user id -> e-mail
        self.secret = ""
        self.emails: dict[str, str] = {}
        with contextlib.suppress(OSError, orjson.JSONDecodeError, AttributeError, TypeError):
            data = orjson.loads(path.read_bytes())  # type: ignore[union-attr]  # None: in memory only
            self.secret = str(data.get("secret") or "")
            self.emails = {str(k): str(v) for k, v in (data.get("emails") or {}).items()}
        self.dirty = not self.secret
        self.secret = self.secret or secrets.token_hex(16)
        self._by_email = {email.lower(): user_id for user_id, email in self.users.items()}

    def pseudonym(self, completed_by: object) -> str:
        """The pseudonymous id of an annotation's `completed_by` (an id, a user object or an e-mail)."""
        email: str | None = None
        if isinstance(completed_by, dict):
            email = completed_by.get("email") if isinstance(completed_by.get("email"), str) else None
            completed_by = completed_by.get("id")
        if isinstance(completed_by, str) and completed_by.strip().isdigit():
            completed_by = int(completed_by)
        elif isinstance(completed_by, str) and "@" in completed_by:
            email, completed_by = completed_by, None
        if isinstance(completed_by, int) and not isinstance(completed_by, bool):
            name = f"{PREFIX}{completed_by}"
            email = email or self.users.get(completed_by)
        elif email and email.lower() in self._by_email:
            name = f"{PREFIX}{self._by_email[email.lower()]}"
        elif email:
            digest = hmac.new(self.secret.encode(), email.lower().encode(), hashlib.sha256).hexdigest()[:12]
            name = f"{PREFIX}e{digest}"
        else:
            return f"{PREFIX}unknown" if completed_by in (None, "") else f"{PREFIX}{completed_by}"
        if email and self.emails.get(name) != email:
            self.emails[name] = email
            self.dirty = True
        return name

    def save(self) -> None:
        """Write the private mapping (only when something new was learnt), readable by the owner only."""
        if not self.dirty or self.path is None:
            return
        with atomic_write(self.path) as handle:
            handle.write(
                orjson.dumps(
                    {"secret": self.secret, "emails": dict(sorted(self.emails.items()))}, option=orjson.OPT_INDENT_2
                )
            )
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        self.dirty = False


def email_of(pseudonym: str, annotations_dir: Path | None = None) -> str | None:
    """The e-mail behind a pseudonym, from the private mapping (None when unknown)."""
    return Identities(private_path(annotations_dir)).emails.get(pseudonym)
