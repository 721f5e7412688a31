"""docs/examples/quickstart.ipynb, executed headless in a real Jupyter kernel: the notebook
of the docs works as written, and says what it should."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_and_reads_the_first_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The notebook works in a temp folder: it is made under tmp_path.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", [])
                       if o.get("name") == "stdout")
               for cell in notebook.cells if cell.cell_type == "code"]
    assert outputs[0] == ""
    assert outputs[1] == "datasets/1/0.0.0 {'rows': 2}\n"
    assert outputs[2] == "datasets/1/0.0.1 [('data/train.csv', 37)]\n"
    assert outputs[3] == ("   length  width\n0     5.1    3.5\n1     4.9    3.0\n"
                          "rows in the latest version: 3\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("ama-quickstart.")]
