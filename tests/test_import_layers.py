"""Lower layers never import higher ones: the import contracts in pyproject.toml, checked by import-linter.

The engine pauses runs, but the review queue answers them; it learns of the queue only through the hooks the
reviews app registers (engine/pause_handler.py, selectors.register_output_type_scope). An import of it, even
one inside a function, breaks the contract.
"""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    kept = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
    assert kept, capsys.readouterr().out
