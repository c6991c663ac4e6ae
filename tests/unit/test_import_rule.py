"""The import rule (docs/architecture.md): a service imports only ``shared/`` and itself.

Every module under ``services/`` and ``shared/`` is parsed (``ast``; nothing is
imported) and each import, at any depth (inside functions and
``TYPE_CHECKING`` blocks too), is checked:

- ``shared.*`` imports no service;
- ``services.X.*`` imports ``shared.*`` and ``services.X.*``, nothing of
  another service, except the supervisor's lazy ``run`` imports (below).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# `tocsin worker NAME` (what each child of the `tocsin up` supervisor runs) imports
# that worker's `run` lazily, inside the command, so `tocsin` itself loads no worker.
SUPERVISOR_MODULE = "services.cli.processes"
SUPERVISED = frozenset(
    f"services.{w}.worker"
    for w in ("ingest", "processor", "notifier", "scheduler", "api", "gateways")
)


@dataclass(frozen=True, slots=True)
class Edge:
    """One import: who imports what (with the names, for ``from … import``), where."""

    importer: str
    imported: str
    names: tuple[str, ...]
    line: int
    lazy: bool  # inside a function body

    def __str__(self) -> str:
        what = f"{self.imported} ({', '.join(self.names)})" if self.names else self.imported
        return f"{self.importer}:{self.line} imports {what}"


def module_name(path: Path, root: Path) -> str:
    """``services/api/app.py`` -> ``services.api.app``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _import_nodes(
    body: list[ast.stmt], lazy: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in ``body`` and the statements nested in it, in source order.

    An import is a statement, so only statement lists are walked (a body, an ``else``,
    a ``finally``, an ``except`` or ``case`` clause), never expressions.
    """
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy
            continue
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                yield from _import_nodes(stmts, inner)
        for clause in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
            yield from _import_nodes(clause.body, inner)


def edges(source: str, importer: str, is_package: bool = False) -> Iterator[Edge]:
    """Every import of one module's source, with whether it sits inside a function."""
    for node, lazy in _import_nodes(ast.parse(source).body, lazy=False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(importer, alias.name, (), node.lineno, lazy)
        else:
            module = _absolute(node, importer, is_package)
            for alias in node.names:
                # `from services import api` names a service, not an attribute.
                target = f"{module}.{alias.name}" if module == "services" else module
                yield Edge(importer, target, (alias.name,), node.lineno, lazy)


def service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 1 else None


def allowed(e: Edge) -> bool:
    """Whether one import keeps the rule (module docstring)."""
    target_service = service_of(e.imported)
    if target_service is None:
        return True  # stdlib, third party, or shared
    if e.importer.split(".")[0] == "shared":
        return False
    own = service_of(e.importer)
    if own == target_service:
        return True
    return (
        e.importer == SUPERVISOR_MODULE
        and e.lazy
        and e.imported in SUPERVISED
        and e.names == ("run",)
    )


def may_import_another_service(source: str, path: Path, root: Path) -> bool:
    """Whether ``source`` could break the rule at all: only those modules are parsed.

    A module of ``services/X/`` must name another service's module
    (``services.Y``), import from ``services`` itself, or import two levels up
    (``from ..`` leaves X's package only from X's top level); any other module
    (``shared/``, ``services/__init__.py``) must name ``services`` or import
    relatively.  Parsing only these (about 1 in 10) keeps the test well under a
    second on the loaded box.
    """
    parts = path.relative_to(root).parts
    if parts[0] == "services" and len(parts) > 2:
        own = re.escape(parts[1])
        pattern = rf"services\.(?!{own}\b)\w|\bfrom\s+services\s+import\b|\bfrom[\s\\]+\.\."
    else:
        pattern = r"services|\bfrom[\s\\]+\."
    return re.search(pattern, source) is not None


def violations(root: Path) -> list[str]:
    """Every import under ``root``'s ``services/`` and ``shared/`` that breaks the rule."""
    out = []
    for top in ("services", "shared"):
        for path in sorted((root / top).rglob("*.py")):
            source = path.read_text()
            if not may_import_another_service(source, path, root):
                continue
            importer = module_name(path, root)
            for e in edges(source, importer, path.name == "__init__.py"):
                if not allowed(e):
                    out.append(str(e))
    return out


def test_no_module_imports_another_service() -> None:
    assert violations(ROOT) == []


def test_the_rule_sees_every_kind_of_cross_service_import(tmp_path: Path) -> None:
    """The checker must be able to fail: plant each kind of violation and find it."""
    (tmp_path / "services" / "api").mkdir(parents=True)
    (tmp_path / "services" / "cli").mkdir(parents=True)
    (tmp_path / "services" / "scheduler").mkdir(parents=True)
    (tmp_path / "services" / "notifier").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "services" / "api" / "a.py").write_text(
        "from services.gateways.registry import MEDIA\n"
        "import services.notifier.routing\n"
        "from services import ingest\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from services.processor.core import apply_event\n"
        "def f():\n"
        "    from services.ingest.worker import run\n"
        "from services.api import errors\n"
        "from shared.models import Rule\n"
        "from shared.explain.simulate import simulate\n"
    )
    (tmp_path / "services" / "cli" / "processes.py").write_text(
        "from services.ingest.worker import run\n"  # eager: not the supervisor's lazy import
        "def cmd():\n"
        "    from services.ingest.worker import run\n"
        "    from services.ingest.worker import make_handler\n"
    )
    (tmp_path / "services" / "scheduler" / "x.py").write_text(
        "from services.processor.core import apply_event\n"  # a worker's module, not shared/
        "from services.gateways.runner import Runner\n"
        "from ..api import app\n"
        "from services.processor.store import write\n"
    )
    # Names no service: only its relative import leaves the notifier.
    (tmp_path / "services" / "notifier" / "y.py").write_text("from ..ingest import worker\n")
    (tmp_path / "shared" / "s.py").write_text("from services.processor import store\n")
    found = violations(tmp_path)
    assert found == [
        "services.api.a:1 imports services.gateways.registry (MEDIA)",
        "services.api.a:2 imports services.notifier.routing",
        "services.api.a:3 imports services.ingest (ingest)",
        "services.api.a:6 imports services.processor.core (apply_event)",
        "services.api.a:8 imports services.ingest.worker (run)",
        "services.cli.processes:1 imports services.ingest.worker (run)",
        "services.cli.processes:4 imports services.ingest.worker (make_handler)",
        "services.notifier.y:1 imports services.ingest (worker)",
        "services.scheduler.x:1 imports services.processor.core (apply_event)",
        "services.scheduler.x:2 imports services.gateways.runner (Runner)",
        "services.scheduler.x:3 imports services.api (app)",
        "services.scheduler.x:4 imports services.processor.store (write)",
        "shared.s:1 imports services.processor (store)",
    ]


@pytest.mark.parametrize(
    ("importer", "is_package", "source", "imported"),
    [
        ("services.api.ui.pages", False, "from ..errors import ApiError", "services.api.errors"),
        ("services.api.ui", True, "from . import views", "services.api.ui"),
        ("services.scheduler", True, "from ..notifier import core", "services.notifier"),
    ],
)
def test_relative_imports_resolve_to_their_package(
    importer: str, is_package: bool, source: str, imported: str
) -> None:
    (edge,) = edges(source, importer, is_package)
    assert edge.imported == imported
