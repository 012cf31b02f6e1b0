"""The package's layout rule (``DESIGN.md``: one concept per module, no module over ~400 lines)."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cti_repro"
MAX_LINES = 400
# Data, not code: the synthetic catalogue's category tree and word lists, one literal.
DATA_MODULES = {"data/synthetic_vocab.py"}


def test_no_code_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) - DATA_MODULES == set(), f"split these modules along a seam (DESIGN.md): {long}"
