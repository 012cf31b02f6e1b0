"""``cti-repro verify`` and ``cti-repro readme-table``: the committed expected numbers and the README's
tables, checked or written from a profile's results (:mod:`cti_repro.report.verify` does the work).

Beside :mod:`cti_repro.cli`, not in ``cti_repro.report``: importing that package loads pandas and
matplotlib, and the parser is built for every command, ``--help`` included."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_verify(args: argparse.Namespace) -> int:
    from cti_repro.config import load_config
    from cti_repro.report import verify

    cfg = load_config(args.profile, args.config)
    results = Path(args.results) if args.results else cfg.path(cfg.results_dir)
    expected = Path(args.expected) if args.expected else verify.expected_path(args.profile)
    plan = verify.planned_cells(cfg.seeds)  # the profile's whole Table 1: a missing cell is not a pass
    if args.write:
        print(f"expected numbers written: {verify.write_expected(results, expected, args.profile, plan)}")
        return 0
    tol = verify.TOLERANCE if args.tolerance is None else args.tolerance
    t = verify.verify_results(results, expected, tol, plan)
    for r in t.itertuples():
        if r.status == "NOT EXPECTED":
            print(f"{r.status} {r.setting} {r.model} seed {r.seed} {r.metric}: planned, but {expected} has no number")
        elif r.status != "OK" or args.verbose:
            print(f"{r.status:7s} {r.setting} {r.model} seed {r.seed} {r.metric}: expected {r.expected:.4f}, "
                  f"got {r.got:.4f} (diff {r.diff:+.4f})")
    counts = t.status.value_counts().to_dict()
    ok = counts.get("OK", 0) == len(t) and len(t) > 0
    print(f"{'OK' if ok else 'FAIL'}: {counts.get('OK', 0)} of {len(t)} cells within {tol:g} points of "
          f"{expected}" + "".join(f", {n} {s}" for s, n in counts.items() if s != "OK"))
    return 0 if ok else 1


def _cmd_readme_table(args: argparse.Namespace) -> int:
    from cti_repro.config import load_config
    from cti_repro.report.verify import STAGE_MARKERS, readme_stage_times, readme_table, write_readme_table

    cfg = load_config(args.profile, args.config)

    results = Path(args.results) if args.results else cfg.path(cfg.results_dir)
    table = readme_table(results)
    stages = readme_stage_times(results) if (results / "build_stages.json").is_file() else None
    if args.write:
        print(f"table written into {write_readme_table(args.write, table)}")
        if stages and STAGE_MARKERS[0] in Path(args.write).read_text(encoding="utf-8"):
            print(f"stage times written into {write_readme_table(args.write, stages, STAGE_MARKERS)}")
    else:
        print(table + ("\n" + stages if stages else ""), end="")
    return 0


def add_verify(sub) -> None:
    """Add ``verify`` and ``readme-table`` to the ``cti-repro`` subparsers ``sub``."""
    s = sub.add_parser("verify", help="compare results with the committed expected numbers, cell by cell")
    s.add_argument("--profile", default="embedded", help="a profile of _config.yml (default: embedded)")
    s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
    s.add_argument("--results", default=None, help="results folder (default: the profile's results_dir)")
    s.add_argument("--expected", default=None, help="expected numbers (default: cti_repro/resources/expected/<profile>.json)")
    s.add_argument("--tolerance", type=float, default=None,
                   help="points (default: cti_repro.report.verify.TOLERANCE, set from the measured 1- vs 2-thread drift)")
    s.add_argument("--write", action="store_true", help="write the expected numbers from the results instead")
    s.add_argument("--verbose", action="store_true", help="print every cell, not only the failures")
    s.set_defaults(func=_cmd_verify)
    s = sub.add_parser("readme-table", help="print the README's Table 1 and stage times (Markdown) from the results")
    s.add_argument("--profile", default="embedded", help="a profile of _config.yml (default: embedded)")
    s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
    s.add_argument("--results", default=None, help="results folder (default: the profile's results_dir)")
    s.add_argument("--write", default=None, metavar="README",
                   help="fill the marked block of this file (e.g. README.md) instead of printing")
    s.set_defaults(func=_cmd_readme_table)


__all__ = ["add_verify"]
