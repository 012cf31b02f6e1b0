"""``cti-repro xmodal run --model NAME``: the second study's own subcommand (Rubio et al. 2017).

Beside :mod:`cti_repro.run.finegrained.cli`: each study keeps its command next to its rows, so the
top-level :mod:`cti_repro.cli` only wires the groups in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cti_repro.cli_args import add_model_run_args


def _cmd_run(args: argparse.Namespace) -> int:
    from cti_repro.config import load_config
    from cti_repro.run.xmodal.row import run_xmodal

    # with --set, cfg.results_dir is <results_dir>/overrides/<hash> (config.move_outputs)
    cfg = load_config(args.profile, args.config, overrides=args.set)
    path = run_xmodal(
        model=args.model, profile=args.profile, seed=args.seed, out_dir=Path(args.out) if args.out else None,
        force=args.force, config_path=args.config, cfg=cfg,
    )
    result = json.loads(Path(path).read_text())
    print(json.dumps({"result": str(path), "n_candidates": result["n_candidates"], "means": result["means"],
                      "aux_accuracy": result.get("aux_accuracy"), "wall_time_s": result["wall_time_s"]},
                     indent=2, default=str))
    return 0


def add_xmodal(sub) -> None:
    """Add the ``xmodal`` command group to the ``cti-repro`` subparsers ``sub``."""
    from cti_repro.study import XMODAL_ALL

    xm = sub.add_parser("xmodal", help="the second study: product text <-> image retrieval (Rubio et al. 2017)")
    xsub = xm.add_subparsers(dest="xmodal_command", required=True)
    s = xsub.add_parser("run", help="run one (model, seed) and write <results_dir>/xmodal/<model>_seed<seed>.json "
                                    "(with --set: under <results_dir>/overrides/<hash>/)")
    add_model_run_args(s, XMODAL_ALL, "the text-image model (a row of the table; KCCA-Nystroem and TwoBranch-TFIDF: "
                                      "variants)", "xmodal.epochs=5")
    s.set_defaults(func=_cmd_run)


__all__ = ["add_xmodal"]
