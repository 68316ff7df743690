"""The adapters go through the one door: `cli/` and `server/` use the Engine, the Recognizer and the
public value types (faceledger.records, faceledger.config), never the store, the governance
modules, private modules of other packages, or the Engine's insides."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import faceledger

PACKAGE = Path(faceledger.__file__).parent
ADAPTERS = ("cli", "server")
FORBIDDEN = ("faceledger.store", "faceledger.governance")
#: Attributes of engine objects an adapter must not read (the store and private state).
FORBIDDEN_ATTRIBUTES = {"store"}
#: Names whose ``.store`` is the adapter's own setting (a store URL), not an engine's store.
OWN_SETTINGS = {"settings", "s", "self"}


def _modules() -> list[Path]:
    return sorted(p for d in ADAPTERS for p in (PACKAGE / d).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> list[tuple[int, str]]:
    """Every module ``path`` (module ``name``) imports, as absolute dotted names (``from a import b``
    gives ``a.b`` too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
    return out


def _package_of(module: str) -> str:
    return module.rpartition(".")[0]


def _problems(path: Path, own: str | None = None) -> list[str]:
    own = own or _module_name(path)
    own_package = own if path.name == "__init__.py" else _package_of(own)
    found: dict[int, str] = {}  # one problem per import statement
    for line, module in _imports(path, own):
        if line in found or not module.startswith("faceledger"):
            continue
        if module.startswith(FORBIDDEN):
            found[line] = f"{path.name}:{line} imports {module}"
            continue
        parts = module.split(".")
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])
                if own_package not in (owner, ".".join(parts[: i - 1])):  # a private name of a sibling is fine
                    found[line] = f"{path.name}:{line} imports {module}, private to {owner}"
                break
    return list(found.values())


def _attribute_problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = {"self", "cls"} | {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}  # a class's own state
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        owner = value.id if isinstance(value, ast.Name) else None
        if node.attr in FORBIDDEN_ATTRIBUTES and owner not in OWN_SETTINGS:
            found.append(f"{path.name}:{node.lineno} reads .{node.attr} of {ast.unparse(value)}")
        elif node.attr.startswith("_") and not node.attr.startswith("__") and owner not in own:
            found.append(f"{path.name}:{node.lineno} reads private .{node.attr} of {ast.unparse(value)}")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_adapters_import_only_the_engine_and_public_types(path: Path):
    assert _problems(path) == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_adapters_do_not_reach_into_the_engine(path: Path):
    assert _attribute_problems(path) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path):
    """A module doing every forbidden thing is caught (so the tests above can fail)."""
    bad = tmp_path / "_probe_for_architecture_test.py"
    source = ("from faceledger.store import open_store\nimport faceledger.governance.policy\n"
              "from faceledger.engine._base import Op\nfrom faceledger import _cv\n"
              "from ...governance import ledger\nfrom . import face_choice\n"
              "def f(engine):\n    return engine.store.ledger_head(), engine._recognizer, settings.store\n")
    bad.write_text(source)
    problems = _problems(bad, "faceledger.server.routes._probe_for_architecture_test")
    attrs = _attribute_problems(bad)
    assert [p.split(" ", 1)[1] for p in problems] == [
        "imports faceledger.store", "imports faceledger.governance.policy",
        "imports faceledger.engine._base, private to faceledger.engine",
        "imports faceledger._cv, private to faceledger", "imports faceledger.governance"]
    assert sorted(attrs) == ["_probe_for_architecture_test.py:8 reads .store of engine",
                             "_probe_for_architecture_test.py:8 reads private ._recognizer of engine"]


def test_public_modules_export_what_adapters_need():
    from faceledger import config, records

    for name in ("ConsentRecord", "ConsentRequest", "Authorization", "AuthorizationRequest", "AuthorizationKind",
                 "ConsentMethod", "LegalBasis", "Role", "Operation", "Decision", "Actor", "ApiKey", "LedgerEntry",
                 "Gallery", "GalleryStats", "parse_time", "check_subject_ref"):
        assert name in records.__all__ and getattr(records, name)
    for name in ("data_dir", "default_store_url", "policy_file", "current_os_user", "owner_uid"):
        assert name in config.__all__ and callable(getattr(config, name))
