"""`publish` against a fake Hub: huggingface_hub's HTTP client (httpx2) gets a mock transport.

The fake answers the endpoints huggingface_hub 2.4 calls for create_repo, list_repo_refs,
upload_folder (tree listing, YAML validation, preupload, LFS batch, commit) and create_tag,
and records every request so the tests can assert the exact commit operations and the tag.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx2
import huggingface_hub
import orjson
import pytest
from huggingface_hub import constants
from huggingface_hub.utils._http import default_client_factory
from typer.testing import CliRunner

from newsstance.cli import app
from newsstance.errors import UserError
from newsstance.release.build import build_release
from newsstance.release.publish import publish_release

TOKEN = "hf_fake_token_never_printed"
COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    def __init__(self, existing_files: list[str], tags: list[str]):
        self.requests: list[httpx2.Request] = []
        self.existing_files = existing_files
        self.tags = tags
        self.lfs: dict[str, str] = {}
        self.commits = 0
        self.fail_commit = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": "https://huggingface.co/datasets/fict-org/newsstance"})
        if path.endswith("/refs"):
            return httpx2.Response(
                200,
                json={
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": "0" * 40}],
                    "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": "1" * 40} for t in self.tags],
                    "converts": [],
                },
            )
        if "/tree/" in path:
            return httpx2.Response(
                200,
                json=[
                    {
                        "type": "file",
                        "path": p,
                        "oid": "0" * 40,
                        "size": 1,
                        **({"lfs": {"oid": self.lfs[p], "size": 1, "pointerSize": 130}} if p in self.lfs else {}),
                    }
                    for p in self.existing_files
                ],
            )
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if "/preupload/" in path:
            files = orjson.loads(request.content)["files"]
            return httpx2.Response(
                200,
                json={
                    "files": [
                        {
                            "path": f["path"],
                            "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular",
                            "shouldIgnore": False,
                        }
                        for f in files
                    ]
                },
            )
        if path.endswith("/info/lfs/objects/batch"):
            objects = orjson.loads(request.content)["objects"]
            return httpx2.Response(200, json={"objects": [{"oid": o["oid"], "size": o["size"]} for o in objects]})
        if "/commit/" in path:
            self.commits += 1
            if self.fail_commit == self.commits:
                return httpx2.Response(500, json={"error": "fake outage"})
            for line in request.content.splitlines():
                op = orjson.loads(line)
                if op["key"] == "lfsFile":
                    self.existing_files.append(op["value"]["path"])
                    self.lfs[op["value"]["path"]] = op["value"]["oid"]
            return httpx2.Response(
                200,
                json={
                    "commitUrl": f"https://huggingface.co/datasets/fict-org/newsstance/commit/{COMMIT}",
                    "commitOid": COMMIT,
                    "pullRequestUrl": None,
                },
            )
        if "/tag/" in path:
            return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": f"not faked: {request.method} {path}"})

    def posts(self, fragment: str) -> list[httpx2.Request]:
        return [r for r in self.requests if r.method == "POST" and fragment in r.url.path]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    def install(existing_files: list[str] | None = None, tags: list[str] | None = None) -> FakeHub:
        hub = FakeHub(existing_files or [], tags or [])
        huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub)))
        return hub

    yield install
    huggingface_hub.set_client_factory(default_client_factory)


@pytest.fixture
def release(corpus) -> Path:
    files = corpus()
    result = build_release(
        version="1.0.0",
        out=files.out,
        articles=[files.articles],
        gold=files.gold,
        splits=files.splits,
        license_id="cc-by-4.0",
        progress=False,
    )
    return result.path


def _commit_operations(hub: FakeHub) -> list[dict[str, Any]]:
    commit = hub.posts("/commit/main")[-1]
    return [orjson.loads(line) for line in commit.content.splitlines()]


def test_publish_commits_exactly_the_release_files_and_tags_the_commit(release: Path, fake_hub) -> None:
    hub = fake_hub(existing_files=["data/default/train-0ld0ld00.parquet", "README.md", ".gitattributes"])
    result = publish_release("fict-org/newsstance", "1.0.0", dist=release.parent)
    assert result.commit_oid == COMMIT

    (create,) = hub.posts("/api/repos/create")
    assert orjson.loads(create.content) == {
        "name": "newsstance",
        "organization": "fict-org",
        "visibility": "public",
        "type": "dataset",
    }
    operations = _commit_operations(hub)
    manifest = orjson.loads((release / "manifest.json").read_bytes())
    listed = {f["path"] for f in manifest["files"]} | {"manifest.json"}
    assert operations[0] == {
        "key": "header",
        "value": {
            "summary": "Release v1.0.0",
            "description": f"newsstance release 1.0.0: {len(listed)} files, see manifest.json.",
        },
    }
    manifest = orjson.loads((release / "manifest.json").read_bytes())
    listed = {f["path"] for f in manifest["files"]} | {"manifest.json"}
    deleted = [op["value"]["path"] for op in operations if op["key"] == "deletedFile"]
    regular = {
        op["value"]["path"]: base64.b64decode(op["value"]["content"]) for op in operations if op["key"] == "file"
    }
    lfs = {op["value"]["path"]: op["value"] for op in operations if op["key"] == "lfsFile"}
    assert deleted == ["data/default/train-0ld0ld00.parquet"]
    assert set(regular) | set(lfs) == listed
    assert {"README.md", "diff.json", "manifest.json", "croissant.json"} <= set(regular)
    assert all(
        p.startswith("figures/") and p.endswith(".png")
        for p in set(regular) - {"README.md", "diff.json", "manifest.json", "croissant.json"}
    )
    for path, content in regular.items():
        local = (release / path).read_bytes()
        if path in ("README.md", "croissant.json"):  # publish fills the repository id in
            assert b"REPO_ID" in local and b"REPO_ID" not in content
            assert content == local.replace(b"REPO_ID", b"fict-org/newsstance")
        else:
            assert content == local
    for path, value in lfs.items():
        data = (release / path).read_bytes()
        assert (value["algo"], value["oid"], value["size"]) == ("sha256", hashlib.sha256(data).hexdigest(), len(data))

    (tag,) = hub.posts("/tag/")
    assert tag.url.path == f"/api/datasets/fict-org/newsstance/tag/{COMMIT}"
    assert orjson.loads(tag.content)["tag"] == "v1.0.0"
    assert all(
        r.headers.get("authorization") == f"Bearer {TOKEN}"
        for r in hub.requests
        if r.url.path.startswith("/api/datasets/")
    )


def test_private_flag_reaches_create_repo(release: Path, fake_hub) -> None:
    hub = fake_hub()
    publish_release("fict-org/newsstance", "1.0.0", dist=release.parent, private=True)
    assert orjson.loads(hub.posts("/api/repos/create")[0].content)["visibility"] == "private"


def test_existing_tag_is_refused_before_any_upload(release: Path, fake_hub) -> None:
    hub = fake_hub(tags=["v1.0.0"])
    with pytest.raises(UserError, match=r"tag v1\.0\.0 already exists"):
        publish_release("fict-org/newsstance", "1.0.0", dist=release.parent)
    assert not hub.posts("/commit/")


def test_modified_release_file_is_refused(release: Path, fake_hub) -> None:
    hub = fake_hub()
    readme = release / "README.md"
    readme.write_text(readme.read_text() + "\nedited by hand\n")
    with pytest.raises(UserError, match=r"README\.md changed since it was built"):
        publish_release("fict-org/newsstance", "1.0.0", dist=release.parent)
    assert hub.requests == []


def test_cli_dry_run_lists_files_and_contacts_nothing(release: Path, fake_hub) -> None:
    hub = fake_hub()
    outcome = CliRunner().invoke(
        app, ["publish", "fict-org/newsstance", "--version", "1.0.0", "--dist", str(release.parent), "--dry-run"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "README.md" in outcome.output and "manifest.json" in outcome.output and "tag v1.0.0" in outcome.output
    assert hub.requests == []


def test_cli_publish_never_prints_the_token(release: Path, fake_hub) -> None:
    fake_hub()
    outcome = CliRunner().invoke(
        app, ["publish", "fict-org/newsstance", "--version", "1.0.0", "--dist", str(release.parent)]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "tagged v1.0.0" in outcome.output
    assert TOKEN not in outcome.output


def test_missing_token_is_a_user_error(release: Path, fake_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = fake_hub()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(UserError, match="no Hugging Face token"):
        publish_release("fict-org/newsstance", "1.0.0", dist=release.parent)
    assert hub.requests == []


def test_interrupted_publish_resumes_without_reuploading(release: Path, fake_hub) -> None:
    """Data files go in batched commits; after an outage, a second publish skips what is already there."""
    hub = fake_hub()
    hub.fail_commit = 2  # the second data commit fails
    with pytest.raises(UserError, match="run publish again to resume"):
        publish_release("fict-org/newsstance", "1.0.0", dist=release.parent, max_files_per_commit=1)
    uploaded_first = set(hub.lfs)
    assert len(uploaded_first) == 1
    hub.fail_commit = 0
    before = len(hub.requests)
    result = publish_release("fict-org/newsstance", "1.0.0", dist=release.parent, max_files_per_commit=1)
    assert result.commit_oid == COMMIT
    resumed = [
        orjson.loads(line)["value"]["path"]
        for r in hub.requests[before:]
        if r.method == "POST" and "/commit/main" in r.url.path
        for line in r.content.splitlines()
        if orjson.loads(line)["key"] == "lfsFile"
    ]
    manifest = orjson.loads((release / "manifest.json").read_bytes())
    data = {f["path"] for f in manifest["files"] if f["path"].startswith("data/")}
    assert set(resumed) == data - uploaded_first
    assert set(hub.lfs) == data


def test_dry_run_warns_about_the_repo_id_placeholder(release: Path, fake_hub) -> None:
    fake_hub()
    outcome = CliRunner().invoke(
        app, ["publish", "fict-org/newsstance", "--version", "1.0.0", "--dist", str(release.parent), "--dry-run"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "warning: README.md has" in outcome.output and "REPO_ID" in outcome.output
