"""Every docstring example of the package runs: ``doctest`` over each ``osnet_monai`` module.

Modules are found on disk (collecting imports nothing); a module whose optional third-party
dependency is not installed is skipped with the reason (any other import error fails). Examples see their module's globals, as ``doctest.testmod``
gives them.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import osnet_monai

PACKAGE_DIR = Path(osnet_monai.__file__).resolve().parent


def package_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", package_modules())
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if (err.name or "osnet_monai").split(".")[0] == "osnet_monai":
            raise  # the package's own module is missing: a bug, not an extra
        pytest.skip(f"{name} needs {err.name}, an optional dependency not installed here")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, module=module):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples of {name} failed (see above)"
