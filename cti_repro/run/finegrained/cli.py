"""``cti-repro finegrained run --model MLF|Kaleido-BERT``: the third study's own subcommand.

A subcommand of its own rather than ``xmodal run --model``: the study has its own records
(``<results_dir>/finegrained/``), config section (``finegrained:``), config hash and protocol
(1 + 100 sampled negatives beside the full ranking), so sharing ``xmodal run`` would mix two
studies' vocabularies, hashes and result folders in one command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cti_repro.cli_args import add_model_run_args


def _cmd_run(args: argparse.Namespace) -> int:
    from cti_repro.run.finegrained.row import run_finegrained

    path = run_finegrained(model=args.model, profile=args.profile, seed=args.seed,
                           out_dir=Path(args.out) if args.out else None, force=args.force, config_path=args.config,
                           sets=args.set or ())
    rec = json.loads(Path(path).read_text())
    print(json.dumps({"result": str(path), "n_candidates": rec["n_candidates"], "protocol": rec["protocol"],
                      "means": rec["means"], "cost": rec["cost"], "wall_time_s": rec["wall_time_s"]}, indent=2))
    return 0


def add_finegrained(sub) -> None:
    """Add the ``finegrained`` command group to the ``cti-repro`` subparsers ``sub``."""
    from cti_repro.run.finegrained.row import MODELS

    fg = sub.add_parser("finegrained", help="the third study: fine-grained text <-> image retrieval (MLF, Kaleido-BERT)")
    fsub = fg.add_subparsers(dest="finegrained_command", required=True)
    s = fsub.add_parser("run", help="run one (model, seed) and write <results_dir>/finegrained/<model>_seed<seed>.json")
    add_model_run_args(s, MODELS, "MLF or Kaleido-BERT", "finegrained.mlf.epochs=5")
    s.set_defaults(func=_cmd_run)


__all__ = ["add_finegrained"]
