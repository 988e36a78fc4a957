"""The language models live in reviewconsole/llm/ and the lead flow's recall in reviewconsole/recall.py."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LLM_PACKAGE = ROOT / "reviewconsole" / "llm"


@pytest.mark.parametrize("old", ["reviewconsole.engine.llms", "reviewconsole.engine.recall"])
def test_the_engine_no_longer_holds_the_models_or_the_recall(old):
    assert importlib.util.find_spec(old) is None


@pytest.mark.parametrize(
    "name",
    [
        "reviewconsole.llm.configured",
        "reviewconsole.llm.demo_model",
        "reviewconsole.llm.decision_model",
        "reviewconsole.llm.responders",
        "reviewconsole.recall",
    ],
)
def test_each_new_home_imports(name):
    assert importlib.import_module(name) is not None


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_the_llm_package_depends_on_no_app():
    """The models sit below the apps: the engine's pages may name the demo model, never the reverse."""
    apps = ("reviewconsole.engine", "reviewconsole.reviews", "reviewconsole.autonomy")
    assert len(list(LLM_PACKAGE.glob("*.py"))) > 1
    offending = {
        f"{path.name}: {module}"
        for path in LLM_PACKAGE.glob("*.py")
        for module in _imported_modules(path)
        if module.startswith(apps)
    }
    assert offending == set()
