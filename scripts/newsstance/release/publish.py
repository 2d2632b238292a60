"""`publish_release`: push one built release to the Hugging Face Hub and tag it `vX.Y.Z`.

Only the files the manifest lists (plus the manifest) are uploaded, after their SHA-256
is checked again, so what reaches the Hub is what the build validated. The placeholder
`REPO_ID` in the card and `croissant.json` is replaced by the real repository id on the way
up (the local release keeps its built bytes).

Large releases upload like `HfApi.upload_large_folder` (which huggingface_hub 2.4 no longer has):
data files go in batched commits (`max_files`/`max_bytes` per commit), and a file already on the
branch with the same LFS SHA-256 is skipped, so an interrupted publish resumes where it stopped.
The last commit carries the card, manifest and other small files and deletes data files of
earlier versions; the tag points at it, so every tag holds exactly its release:
`load_dataset(repo, revision="v1.0.0")`. The token comes from `HF_TOKEN` or the stored login
and is never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from newsstance.errors import UserError
from newsstance.release.versions import MANIFEST, parse_version, read_manifest, sha256_file

REPO_PLACEHOLDER = "REPO_ID"
FILLED = ("README.md", "croissant.json")  # files whose `REPO_ID` publish replaces
MAX_FILES_PER_COMMIT = 100
MAX_BYTES_PER_COMMIT = 2 * 1024**3


@dataclass(frozen=True)
class PublishPlan:
    repo_id: str
    version: str
    tag: str
    folder: Path
    files: list[tuple[str, int]]  # path in repo, size in bytes
    private: bool
    sha256: dict[str, str]
    placeholders: dict[str, int]  # file -> occurrences of REPO_ID that publish fills in

    def warnings(self) -> list[str]:
        return [
            f"{name} has {n} placeholder(s) `{REPO_PLACEHOLDER}`; publish writes {self.repo_id} there"
            for name, n in self.placeholders.items()
            if n
        ]


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
    hashes: dict[str, str] = {}
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file():
            raise UserError(f"release {version} is missing {entry['path']} listed in its manifest")
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise UserError(f"release {version}: {entry['path']} changed since it was built (sha256 differs)")
        files.append((entry["path"], entry["size"]))
        hashes[entry["path"]] = entry["sha256"]
    files.append((MANIFEST, (folder / MANIFEST).stat().st_size))
    placeholders = {
        name: (folder / name).read_text(encoding="utf-8").count(REPO_PLACEHOLDER)
        for name in FILLED
        if (folder / name).is_file()
    }
    return PublishPlan(repo_id, version, f"v{version}", folder, sorted(files), private, hashes, placeholders)


def _remote_lfs(api: object, repo_id: str) -> dict[str, str]:
    """path -> LFS sha256 of every LFS file on the main branch (what a resumed upload may skip)."""
    from huggingface_hub import HfApi, RepoFile
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    assert isinstance(api, HfApi)
    try:
        entries = api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, expand=True)
        return {e.path: e.lfs.sha256 for e in entries if isinstance(e, RepoFile) and e.lfs is not None}
    except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError):
        return {}


def _batches(files: list[tuple[str, int]], max_files: int, max_bytes: int) -> list[list[tuple[str, int]]]:
    batches: list[list[tuple[str, int]]] = [[]]
    size = 0
    for path, n in files:
        if batches[-1] and (len(batches[-1]) >= max_files or size + n > max_bytes):
            batches.append([])
            size = 0
        batches[-1].append((path, n))
        size += n
    return batches


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
    max_files_per_commit: int = MAX_FILES_PER_COMMIT,
    max_bytes_per_commit: int = MAX_BYTES_PER_COMMIT,
) -> PublishResult:
    """create_repo(exist_ok=True) -> batched commits of data files (skipping those already there) -> a final
    commit with the small files and stale deletions -> create_tag("vX.Y.Z") on it."""
    plan = plan_publish(repo_id, version, Path(dist), private)
    if dry_run:
        return PublishResult(plan, None, None)
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=resolve_token(token))
    step = "create the repository"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        step = "list the tags"
        if plan.tag in {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}:
            raise UserError(f"tag {plan.tag} already exists on {repo_id}; versions are never re-tagged")
        step = "list the files already uploaded"
        remote = _remote_lfs(api, repo_id)
        data = [(p, n) for p, n in plan.files if p.startswith("data/")]
        small = [(p, n) for p, n in plan.files if not p.startswith("data/")]
        todo = [(p, n) for p, n in data if remote.get(p) != plan.sha256.get(p)]
        batches = _batches(todo, max_files_per_commit, max_bytes_per_commit)
        for index, batch in enumerate(batches[:-1], start=1):
            step = f"upload data files (part {index}/{len(batches)})"
            api.create_commit(
                repo_id,
                [CommitOperationAdd(path, plan.folder / path) for path, _ in batch],
                repo_type="dataset",
                commit_message=f"Release {plan.tag} (data, part {index}/{len(batches)})",
            )
        step = "upload the release"
        kept = {p for p, _ in plan.files}
        stale = [p for p in _remote_paths(api, repo_id) if p.startswith("data/") and p not in kept]
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path, plan.folder / path) for path, _ in batches[-1]
        ]
        for path, _ in small:
            content = (plan.folder / path).read_bytes()
            if path in FILLED:
                content = content.replace(REPO_PLACEHOLDER.encode(), repo_id.encode())
            operations.append(CommitOperationAdd(path, content))
        operations += [CommitOperationDelete(path) for path in stale]
        commit = api.create_commit(
            repo_id,
            operations,
            repo_type="dataset",
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
        raise UserError(
            f"could not {step} on {repo_id} (HTTP {status}): {str(exc).splitlines()[0]} "
            "- run publish again to resume (files already uploaded are skipped)"
        ) from None
    except OSError as exc:
        raise UserError(f"could not {step}: {exc.strerror or exc} ({exc.filename or plan.folder})") from None
    return PublishResult(plan, commit.oid, commit.commit_url)


def _remote_paths(api: object, repo_id: str) -> list[str]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    assert isinstance(api, HfApi)
    try:
        return [e.path for e in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)]
    except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError):
        return []
