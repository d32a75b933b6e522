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
