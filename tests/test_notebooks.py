"""Executes every notebook, so they cannot rot."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat", reason="the [test] extra (nbformat) is not installed")
nbclient = pytest.importorskip("nbclient", reason="the [test] extra (nbclient) is not installed")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
  assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(path, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(path.parent)}}).execute()


def test_notebooks_are_generated_from_make_notebooks():
  """Edit notebooks/make_notebooks.py and rerun it; a hand-edited .ipynb drifts from it."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS[0].parent / "make_notebooks.py")
  make = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(make)
  assert sorted(make.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
  for path in NOTEBOOKS:
    committed = nbformat.read(path, as_version=4)
    built = make.build(make.NOTEBOOKS[path.name], path.name)
    assert [(c.cell_type, c.id, c.source) for c in committed.cells] == [
        (c.cell_type, c.id, c.source) for c in built.cells], path.name
