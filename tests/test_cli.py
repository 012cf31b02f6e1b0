"""The command line as a user meets it: every option explained, a version, the study's names."""

from __future__ import annotations

import argparse

import pytest

from cti_repro import __version__, study
from cti_repro.cli import build_parser, main


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.dest != "help":
            yield path, action


def test_every_option_has_help_text() -> None:
    missing = [(" ".join(p), a.option_strings or a.dest) for p, a in _options(build_parser()) if not a.help]
    assert missing == []


def test_choices_come_from_the_study_vocabulary() -> None:
    run = {tuple(a.option_strings): a for p, a in _options(build_parser()) if p == ("run",)}
    assert tuple(run[("--setting",)].choices) == study.SETTINGS
    assert tuple(run[("--model",)].choices) == study.MODELS


def test_version_prints_package_and_commit(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cti-repro {__version__} (commit ")
