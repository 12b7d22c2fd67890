"""Every analyst notebook runs top to bottom on the shipped examples (notebooks/data/), in a real
kernel, with notebooks/ as the working directory; any cell error fails the test.

Also pins what the repository ships: notebooks without stored outputs, small example data.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_at_least_three_notebooks() -> None:
    names = {p.name for p in PATHS}
    assert {"01_explore_run.ipynb", "02_compare_profiles.ipynb", "03_capacity_sweep.ipynb"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_has_no_stored_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


def test_example_data_is_small() -> None:
    files = [f for f in (NOTEBOOKS / "data").rglob("*") if f.is_file()]
    assert files, "notebooks/data is empty: run python notebooks/make_examples.py"
    assert sum(f.stat().st_size for f in files) < 600 * 1024
    assert not [f for f in files if f.suffix in (".html", ".png")]


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_executes(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # kernel "python3" is ipykernel's own spec; jupyter_client launches it with sys.executable,
    # so it is this venv's interpreter even in a fresh venv without `jupyter kernelspec install`.
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on any error
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"{path.name} took {elapsed:.0f} s (budget: a minute)"
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}))
    assert images >= 1, f"{path.name}: no inline plot"
