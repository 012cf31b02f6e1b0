"""Argument pieces shared by the ``cti-repro`` command groups (top level, ``xmodal``, ``finegrained``).

Light on purpose (argparse only): ``cti-repro --help`` imports this module.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def seed_number(text: str) -> int:
    """An argparse type: a seed numpy takes, [0, 2^32 - 1] (argparse names the option on refusal)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"seeds must be in [0, 2^32 - 1] (numpy's range), got {value}")
    return value


def add_executor_args(s: argparse.ArgumentParser) -> None:
    """``--executor local|ray``, ``--address`` and ``--retries`` (``features``, ``reproduce``)."""
    s.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local worker processes, or one Ray task each (pip install -e '.[ray]')")
    s.add_argument("--address", default=None,
                   help="Ray cluster to join (auto: the one started by `ray start` on this node); "
                        "default: start a local one")
    s.add_argument("--retries", type=int, default=None,
                   help="Ray: attempts after a failure or a dead worker before a task counts as failed (default 2)")


def add_model_run_args(s: argparse.ArgumentParser, models: Sequence[str], model_help: str, set_example: str) -> None:
    """The options of a study's ``run`` subcommand for one (model, seed): ``--model`` (one of ``models``),
    ``--profile``, ``--config``, ``--seed``, ``--set`` (repeatable; ``None`` when absent), ``--out``, ``--force``."""
    s.add_argument("--model", required=True, choices=models, help=model_help)
    s.add_argument("--profile", default="embedded", help="a profile of _config.yml (default: embedded)")
    s.add_argument("--config", default=None, help="study config (default: ./_config.yml)")
    s.add_argument("--seed", type=seed_number, default=None, help="model seed (default: the profile's first seed)")
    s.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help=f"config override, dotted key and YAML value, e.g. {set_example} (repeatable)")
    s.add_argument("--out", default=None, help="results directory (default: from the profile)")
    s.add_argument("--force", action="store_true", help="recompute even if the result exists")


__all__ = ["seed_number", "add_executor_args", "add_model_run_args"]
