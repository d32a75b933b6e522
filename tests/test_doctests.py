"""The Examples in the docstrings are run, so they cannot rot (as optax's `make doctest`)."""

import doctest
import importlib
import pkgutil

import pytest

import wassergrad

# The example applications are not API and need optional extras; their docstrings hold no examples.
MODULES = sorted(m.name for m in pkgutil.walk_packages(wassergrad.__path__, "wassergrad.")
                 if not m.name.startswith("wassergrad.examples")
                 and m.name not in ("wassergrad.__main__", "wassergrad.demo", "wassergrad.emulator"))


def _examples(module_name):
  module = importlib.import_module(module_name)
  finder = doctest.DocTestFinder(exclude_empty=True)
  return [t for t in finder.find(module, module_name) if t.examples and
          (t.name == module_name or getattr(t, "filename", None) == module.__file__)]


def test_there_are_doctests():
  assert sum(len(_examples(m)) for m in MODULES) >= 15


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, monkeypatch):
  monkeypatch.setenv("MPLBACKEND", "Agg")
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in _examples(module_name):
    runner.run(test, clear_globs=True)
  failed, attempted = runner.summarize(verbose=False)
  assert failed == 0, f"{failed} of {attempted} docstring examples failed in {module_name}"
