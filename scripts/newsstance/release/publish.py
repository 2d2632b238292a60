"""`publish_release`: push one built release to the Hugging Face Hub and tag it `vX.Y.Z`.

Only the files the manifest lists (plus the manifest) are uploaded, after their SHA-256
is checked again, so what reaches the Hub is what the build validated. Data files of
earlier versions are deleted from the branch in the same commit (`delete_patterns`),
while the tag of every version keeps its own files: `load_dataset(repo, revision="v1.0.0")`.
The token comes from `HF_TOKEN` or the stored login and is never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from newsstance.errors import UserError
from newsstance.release.versions import MANIFEST, parse_version, read_manifest, sha256_file


@dataclass(frozen=True)
class PublishPlan:
    repo_id: str
    version: str
    tag: str
    folder: Path
    files: list[tuple[str, int]]  # path in repo, size in bytes
    private: bool


@dataclass(frozen=True)
class PublishResult:
    plan: PublishPlan
    commit_oid: str | None
    commit_url: str | None


def plan_publish(repo_id: str, version: str, dist: Path, private: bool = False) -> PublishPlan:
    """Check the release folder against its manifest and list what would be uploaded."""
    parse_version(version)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserError(f"REPO_ID must look like user-or-org/name, got {repo_id!r}")
    folder = dist / version
    if not folder.is_dir():
        raise UserError(f"no release {version} in {dist} (run `newsstance build --version {version}` first)")
    manifest = read_manifest(folder)
    if manifest.get("version") != version:
        raise UserError(f"{folder / MANIFEST} is for version {manifest.get('version')}, not {version}")
    files = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file():
            raise UserError(f"release {version} is missing {entry['path']} listed in its manifest")
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise UserError(f"release {version}: {entry['path']} changed since it was built (sha256 differs)")
        files.append((entry["path"], entry["size"]))
    files.append((MANIFEST, (folder / MANIFEST).stat().st_size))
    return PublishPlan(repo_id, version, f"v{version}", folder, sorted(files), private)


def resolve_token(token: str | None = None) -> str:
    """`token`, else HF_TOKEN, else the token stored by `hf auth login`."""
    from huggingface_hub import get_token

    found = token or os.environ.get("HF_TOKEN") or get_token()
    if not found:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run)")
    return found


def publish_release(
    repo_id: str,
    version: str,
    *,
    dist: Path | str = "dist",
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
) -> PublishResult:
    """create_repo(exist_ok=True) -> upload_folder (one commit) -> create_tag("vX.Y.Z") on that commit."""
    plan = plan_publish(repo_id, version, Path(dist), private)
    if dry_run:
        return PublishResult(plan, None, None)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=resolve_token(token))
    step = "create the repository"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        step = "list the tags"
        if plan.tag in {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}:
            raise UserError(f"tag {plan.tag} already exists on {repo_id}; versions are never re-tagged")
        step = "upload the release"
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=plan.folder,
            allow_patterns=[path for path, _ in plan.files],
            delete_patterns=["data/**"],
            commit_message=f"Release {plan.tag}",
            commit_description=f"newsstance release {version}: {len(plan.files)} files, see manifest.json.",
        )
        step = f"create the tag {plan.tag}"
        api.create_tag(
            repo_id, tag=plan.tag, tag_message=f"newsstance release {version}", revision=commit.oid, repo_type="dataset"
        )
    except OfflineModeIsEnabled:
        raise UserError("cannot publish while HF_HUB_OFFLINE is set") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise UserError(f"could not {step} on {repo_id} (HTTP {status}): {str(exc).splitlines()[0]}") from None
    return PublishResult(plan, commit.oid, commit.commit_url)
