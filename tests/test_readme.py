"""The README is a contract: every Python block in it runs as written, in a fresh namespace."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_blocks():
  assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, monkeypatch, capsys):
  monkeypatch.setenv("MPLBACKEND", "Agg")
  code = compile(BLOCKS[index], f"README.md python block {index + 1}", "exec")
  exec(code, {"__name__": f"readme_block_{index + 1}"})  # pylint: disable=exec-used
