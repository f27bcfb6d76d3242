"""The docstring examples of every installed ``medr3_env`` module run and print what they show.

``pytest --doctest-modules`` cannot collect them soundly here: it imports a file by its place in
the checkout, so ``rewards/numeric.py`` would run as a second module ``rewards.numeric`` beside the
installed ``medr3_env.rewards.numeric`` (and ``rewards/builtin.py`` would register every reward
term twice). This test imports each module by its installed name instead, walking the packages
that pyproject.toml installs, and runs its examples with the ``doctest_optionflags`` of
pyproject's ``[tool.pytest.ini_options]``. Examples that need a model download carry
``# doctest: +SKIP``."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import json
import pkgutil
import re
from pathlib import Path

import pytest

from medr3_env.plugins import registry

ROOT = Path(__file__).resolve().parents[1]


def installed_packages() -> list[str]:
    """The ``packages`` pyproject.toml installs (``medr3_env.rewards`` from rewards/ etc.)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r"^packages = (\[.*\])$", text, re.MULTILINE)
    assert found, "pyproject.toml lists no [tool.setuptools] packages"
    return list(json.loads(found.group(1)))


def modules_with_examples() -> list[str]:
    """Every installed module whose source holds a ``>>>`` example (found without importing it)."""
    names: set[str] = set()
    for package in installed_packages():
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        names.add(package)
        for info in pkgutil.iter_modules(spec.submodule_search_locations, f"{package}."):
            if not info.ispkg:
                names.add(info.name)
    with_examples = []
    for name in sorted(names):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        if ">>>" in Path(spec.origin).read_text(encoding="utf-8"):
            with_examples.append(name)
    return with_examples


MODULES = modules_with_examples()


def test_examples_are_found_in_the_folders_that_install_into_the_namespace():
    assert {"medr3_env.rewards", "medr3_env.corpora", "medr3_env.agents"} <= set(
        installed_packages()
    )
    assert {"medr3_env", "medr3_env.rewards.numeric", "medr3_env.corpora.specs"} <= set(MODULES)


@pytest.fixture()
def clean_registries():
    """Plug-ins an example registers are removed afterwards (the registries are process-wide)."""
    before = {kind: set(reg.names()) for kind, reg in registry.by_kind().items()}
    yield
    for kind, reg in registry.by_kind().items():
        for name in set(reg.names()) - before[kind]:
            reg.unregister(name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, pytestconfig, clean_registries):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra (the server's FastAPI, say) is not installed
        missing = exc.name or getattr(exc.__cause__, "name", None)
        if missing is None or missing.split(".")[0] == "medr3_env":
            raise
        pytest.skip(f"{name} needs {missing}: {exc}")
    flags = 0
    for flag in pytestconfig.getini("doctest_optionflags"):
        flags |= doctest.OPTIONFLAGS_BY_NAME[flag]
    runner = doctest.DocTestRunner(optionflags=flags)
    report = io.StringIO()
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    assert tests, f"{name} has '>>>' in its source but no docstring example"
    for test in tests:
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
    if runner.tries == 0:  # then every example must say why it does not run
        examples = [example for test in tests for example in test.examples]
        assert all(example.options.get(doctest.SKIP) for example in examples)
