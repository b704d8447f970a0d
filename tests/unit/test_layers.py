"""DESIGN.md's import layers, checked over the source with ``ast``.

``cli → local|bootstrap → components → machinery|client|storage → api``: a module imports only
from its own layer or below, and components never import each other. Every import counts, also
ones inside functions or under ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "kubeha"

RANK = {
    "api": 0,
    "machinery": 1,
    "client": 1,
    "storage": 1,
    "apiserver": 2,
    "controllers": 2,
    "scheduler": 2,
    "kubelet": 2,
    "proxy": 2,
    "dns": 2,
    "fakenode": 2,  # kwok-like nodes without a kubelet (tests and benchmarks)
    "local": 3,
    "bootstrap": 3,
    "cli": 4,
    "__main__": 4,  # `python -m kubeha` is the CLI
}
COMPONENTS = {name for name, rank in RANK.items() if rank == 2}


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """(line, absolute module) of every kubeha import in the file, relative ones resolved."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from kubeha import storage` imports the subpackage storage.
            if target == "kubeha":
                out += [(node.lineno, f"kubeha.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, target))
    return [(line, name) for line, name in out if name == "kubeha" or name.startswith("kubeha.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when the import is allowed."""
    src, dst = _layer(importer), _layer(imported)
    if dst is None:
        return None
    if src is None:
        return "the package root must not import its subpackages"
    if src == dst:
        return None
    if src in COMPONENTS and dst in COMPONENTS:
        return "components never import each other"
    if RANK[dst] > RANK[src]:
        return f"{src} (layer {RANK[src]}) may not import the higher layer {dst} (layer {RANK[dst]})"
    return None


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_subpackage_has_a_layer() -> None:
    layers = {_layer(_module_name(p)) for p in _sources()}
    unknown = {layer for layer in layers if layer is not None} - set(RANK)
    assert not unknown, f"add these packages to the layer table (and to DESIGN.md): {sorted(unknown)}"


def test_imports_follow_the_layers() -> None:
    problems = []
    for path in _sources():
        importer = _module_name(path)
        for line, imported in _imports(path):
            reason = violation(importer, imported)
            if reason:
                problems.append(f"{path.relative_to(SRC.parent)}:{line}: imports {imported}: {reason}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("kubeha.cli.main", "kubeha.apiserver.server", True),
        ("kubeha.apiserver.rest", "kubeha.storage.store", True),
        ("kubeha.storage.store", "kubeha.api.errors", True),
        ("kubeha.storage.store", "kubeha.machinery.queue", True),
        ("kubeha.bootstrap.pki", "kubeha.local.net", True),
        ("kubeha.api.schema", "kubeha.storage.interface", False),
        ("kubeha.storage.store", "kubeha.apiserver.app", False),
        ("kubeha.controllers.deployment", "kubeha.scheduler.queue", False),
        ("kubeha.kubelet.pods", "kubeha.bootstrap.pki", False),
        ("kubeha.bootstrap.pki", "kubeha.cli.main", False),
    ],
)
def test_layer_rule(importer: str, imported: str, allowed: bool) -> None:
    assert (violation(importer, imported) is None) is allowed


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = tmp_path / "kubeha"
    (root / "storage").mkdir(parents=True)
    mod = root / "storage" / "store.py"
    mod.write_text("from ..apiserver import app\nfrom . import interface\nimport kubeha.api.errors\n")
    assert _imports(mod, root) == [(1, "kubeha.apiserver"), (2, "kubeha.storage"), (3, "kubeha.api.errors")]
