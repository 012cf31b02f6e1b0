"""The exact commands that produce a page, generated from the page's own parameters.

Every row and report page shows how to run it again by hand: the ``cti-repro`` form and the
``papermill`` form with every parameter the page was executed with (paths relative to the
repository when inside it).

Example:
    >>> row_commands("all", "CLIP-I", "embedded", 1)["cti-repro"]
    'cti-repro run --setting all --model CLIP-I --profile embedded --seed 1 --force'
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from cti_repro.report.styles import admonition

TEMPLATES = "book/templates"


def _rel(value: Any, root: str | Path | None) -> str:
    """A path parameter relative to ``root`` (the repository) when it lies inside it."""
    s = str(value)
    if root is not None and s:
        try:
            return Path(s).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return s


def shown_path(path: str | Path, root: str | Path | None = None) -> str:
    """``path`` as a page may show it: relative to ``root`` (the repository) when inside it, else
    ``…/<folder>/<file>`` (never the build machine's absolute path: pages are read elsewhere)."""
    s = _rel(path, root)
    if not Path(s).is_absolute():
        return s
    return "…/" + "/".join(Path(s).parts[-2:])


def papermill_command(template: str, params: dict[str, Any], root: Path | None = None) -> str:
    """``papermill book/templates/T.ipynb out.ipynb -p k v ...`` for every non-empty parameter."""
    parts = ["papermill", f"{TEMPLATES}/{template}.ipynb", f"{template}_out.ipynb"]
    for k, v in params.items():
        if v is None or v == "" or v is False:
            continue
        v = _rel(v, root) if k.endswith(("_dir", "_path")) else v
        parts += ["-p", k, str(v)]
    return " ".join(shlex.quote(p) for p in parts)


def row_commands(setting: str, model: str, profile: str, seed: int, results_dir: str = "",
                 config_path: str = "", root: Path | None = None) -> dict[str, str]:
    """The two commands of one row page.

    Returns:
        ``{"cti-repro": ..., "papermill": ...}``: ``cti-repro run ... --force`` recomputes the
        row's result JSON (without ``--force`` a current result is returned as it is, so the
        command would not rerun what the page shows); papermill executes its page (the result is
        reused when current).
    """
    cli = ["cti-repro", "run", "--setting", setting, "--model", model, "--profile", profile, "--seed", str(seed)]
    cli += _location(results_dir, config_path, root) + ["--force"]
    params = {"setting": setting, "model": model, "profile": profile, "seed": int(seed),
              "results_dir": results_dir, "config_path": config_path}
    return {"cti-repro": " ".join(shlex.quote(p) for p in cli), "papermill": papermill_command("row", params, root)}


def _location(results_dir: str, config_path: str, root: Path | None) -> list[str]:
    """``--config C --out R`` of a command, each only when given (relative to ``root`` when inside)."""
    return ((["--config", _rel(config_path, root)] if config_path else [])
            + (["--out", _rel(results_dir, root)] if results_dir else []))


def xmodal_row_commands(model: str, profile: str, seed: int, results_dir: str = "", config_path: str = "",
                        root: Path | None = None) -> dict[str, str]:
    """The two commands of one text-image row page (``cti-repro xmodal run ... --force``, papermill)."""
    cli = ["cti-repro", "xmodal", "run", "--model", model, "--profile", profile, "--seed", str(seed)]
    cli += _location(results_dir, config_path, root) + ["--force"]
    params = {"model": model, "profile": profile, "seed": int(seed), "results_dir": results_dir,
              "config_path": config_path}
    return {"cti-repro": " ".join(shlex.quote(p) for p in cli),
            "papermill": papermill_command("xmodal_row", params, root)}


def report_commands(template: str, profile: str, results_dir: str = "", config_path: str = "",
                    root: Path | None = None) -> dict[str, str]:
    """The two commands of a report page (``cti-repro report`` re-executes every report page)."""
    cli = ["cti-repro", "report", "--profile", profile] + (["--config", _rel(config_path, root)] if config_path else [])
    params = {"profile": profile, "results_dir": results_dir, "config_path": config_path}
    return {"cti-repro": " ".join(shlex.quote(p) for p in cli), "papermill": papermill_command(template, params, root)}


SHOWN_COMMANDS = 2  # a box shows this many commands open; the rest fold into one <details>


def commands_html(commands: dict[str, str], what: str = "this page", note: str = "") -> str:
    """A note box with the commands (``<pre>`` blocks that wrap, see ``book/_static/cti.css``);
    ``note`` (HTML) follows them inside the box.

    The first :data:`SHOWN_COMMANDS` are shown; any further ones (the beyond page has one per
    extension and setting) fold into a ``<details>`` that says how many, so that a page's results
    do not start a screen below its commands.
    """
    import html

    blocks = [f"<p>{html.escape(k)}:</p><pre class='cti-command' data-kind='{html.escape(k)}'>"
              f"{html.escape(v)}</pre>" for k, v in commands.items()]
    body = "".join(blocks[:SHOWN_COMMANDS])
    if len(blocks) > SHOWN_COMMANDS:
        rest = len(blocks) - SHOWN_COMMANDS
        body += (f"<details><summary>{rest} more command{'s' if rest > 1 else ''}</summary>"
                 + "".join(blocks[SHOWN_COMMANDS:]) + "</details>")
    return admonition("note", f"Run {what} by hand", body + note)


__all__ = ["shown_path", "xmodal_row_commands", "row_commands", "report_commands", "papermill_command", "commands_html", "TEMPLATES"]
