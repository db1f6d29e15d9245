"""The layer rule of DESIGN.md, kept by walking every import with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "ledger", "projections", "commands")

#: what each package may import among Folio's own packages and the libraries that matter for layering
ALLOWED = {
    "domain": set(),
    "ledger": {"domain"},
    "projections": {"domain", "ledger"},
    "commands": {"domain", "ledger", "projections"},
}
FORBIDDEN_LIBS = {
    "domain": {"sqlite3", "sqlite_utils", "click", "cattrs"},
    "ledger": {"click"},
    "projections": {"click"},
    "commands": set(),
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_layers_below_it(package):
    bad = []
    for path in files(package):
        for line, name in imports_of(path):
            if name in PACKAGES and name != package and name not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if name in FORBIDDEN_LIBS[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert bad == []


def test_ledger_reaches_the_domain_only_through_its_codec_and_the_event_types():
    bad = []
    for path in files("ledger"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("domain"):
                if path.name != "codec.py" and node.module != "domain.events":
                    bad.append(f"{path.name}:{node.lineno} imports {node.module}")
    assert bad == []


def test_domain_reads_no_clock_and_no_environment():
    bad = []
    for path in files("domain"):
        text = path.read_text()
        for needle in ("datetime.now", "date.today", "time.time(", "os.environ", ".now("):
            if needle in text:
                bad.append(f"{path.name}: {needle}")
    assert bad == []


def test_projections_never_append_events():
    for path in files("projections"):
        text = path.read_text()
        assert "store.append(" not in text and ".restore(" not in text, path


def test_every_package_says_what_it_owns_and_may_import():
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert doc and "May import" in doc, package


def test_the_cli_starts_without_the_solvers():
    """Every `folio` command pays for what `commands.cli` imports: scipy.optimize, scipy.stats and highspy cost
    0.3-0.6 s each and are needed only by the commands that solve, which import them when they run."""
    import subprocess
    import sys

    code = ("import sys, commands.cli; "
            "print(','.join(sorted(m for m in ('scipy.optimize', 'scipy.stats', 'scipy.sparse', 'highspy') if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
