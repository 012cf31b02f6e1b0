"""The report pages of a batch (``cti_repro.run.pages``): several at once, a failure isolated."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from cti_repro.config import load_config
from cti_repro.run import book
from cti_repro.run.pages import execute_pages

from tests.smoke import smoke_config


def _template(path: Path, body: str) -> None:
    params = nbformat.v4.new_code_cell('profile = ""\nconfig_path = ""\nresults_dir = ""', metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_report_pages_in_worker_processes(tmp_path):
    """Two workers run every page; the broken one is reported by name (with its ``.failed.ipynb``)
    and the others still run, each with the parameters it was given. The broken page is the last:
    in one kernel (no workers) every other page would print one pid."""
    cfg = load_config("smoke", smoke_config(tmp_path))
    source = tmp_path / "source"
    layout = book.BookLayout(source, tmp_path / "built", cfg.profile)
    names = book.REPORTS + book.XMODAL_REPORTS
    for name in names:
        body = 'raise ValueError("broken page")' if name == "report_xmodal" else \
            f'import json, os\nprint(json.dumps({{"page": "{name}", "pid": os.getpid(), "profile": profile}}))'
        _template(layout.templates / f"{name}.ipynb", body)

    problems = execute_pages(cfg, "fp0", layout, Path(cfg.root) / "_config.yml", data=False, workers=2)

    assert len(problems) == 1 and problems[0].startswith("report_xmodal: ValueError: broken page")
    assert str(layout.report_notebook("report_xmodal").with_suffix(".failed.ipynb")) in problems[0]
    assert layout.report_notebook("report_xmodal").with_suffix(".failed.ipynb").is_file()
    pids = set()
    for name in names:
        if name == "report_xmodal":
            continue
        nb = nbformat.read(layout.report_notebook(name), as_version=4)
        (out,) = [json.loads(o["text"]) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("name") == "stdout"]
        assert out["page"] == name and out["profile"] == "smoke"
        pids.add(out["pid"])
    assert len(pids) >= 2  # not one kernel for all: the pages ran in the workers' kernels
