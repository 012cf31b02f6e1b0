"""Does a result record reproduce the paper? One decision, from what ran, for every page.

A record reproduces the paper only when all three hold (:func:`reproduction_gaps` names each one
that does not): the real XMarket catalogue; pretrained weights for every encoder the model uses
(:data:`cti_repro.study.FEATURES_BY_MODEL` says which); the paper's protocol (no option beyond the
paper, the test products as candidates, AP@k over the hits in the top k). The config label
``labels.demonstration`` can only add a gap: a run labelled a reproduction with random weights or
synthetic data is still not one. Table 1's verdicts, ``comparison.csv``, the provenance box, the
row pages and the headline all call :func:`reproduces` / :func:`study_reproduces`.
"""

from __future__ import annotations

from typing import Any

from cti_repro.study import FEATURES_BY_MODEL

# which encoder role (``record["encoders"]`` key) computes each feature part
_ROLE_OF_PART = {"image": "image", "clip_category": "image", "clip_title": "image",
                 "title": "text", "attributes": "text", "category": "text"}
# the paper's evaluation protocol, as the record states it: field -> (where in the record, value)
PAPER_PROTOCOL: dict[str, str] = {"ranking.candidates": "test", "ap_norm": "hits"}


def encoder_roles(model: str) -> list[str] | None:
    """The encoder roles a Table 1 model's features come from (``[]`` for BM25); None for a model
    outside Table 1 (the text-image study's), whose record lists the encoders it used."""
    if model not in FEATURES_BY_MODEL:
        return None
    return sorted({_ROLE_OF_PART[p] for p in FEATURES_BY_MODEL[model] if p in _ROLE_OF_PART})


def _field(record: dict[str, Any], dotted: str) -> Any:
    node: Any = record
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def reproduction_gaps(record: dict[str, Any]) -> list[str]:
    """Why ``record`` is not a reproduction of the paper, one short phrase each; ``[]`` if it is."""
    gaps = []
    source = (record.get("data") or {}).get("source")
    if source != "xmarket":
        gaps.append(f"catalogue: {source or 'unknown'}, not XMarket")
    encoders = record.get("encoders") or {}
    roles = encoder_roles(str(record.get("model")))
    for role in sorted(encoders) if roles is None else roles:
        e = encoders.get(role)
        if not isinstance(e, dict):
            gaps.append(f"{role} encoder: not recorded")
        elif not e.get("pretrained", False):
            gaps.append(f"{role} encoder {e.get('name')}: random weights ({e.get('weights')})")
    if beyond := record.get("beyond_the_paper"):
        gaps.append("beyond the paper: " + ", ".join(f"{k}={v}" for k, v in beyond.items()))
    for dotted, value in PAPER_PROTOCOL.items():
        got = _field(record, dotted)
        if got is not None and got != value:  # an older record without the field ran the default
            gaps.append(f"protocol: {dotted}={got}, the paper's is {value}")
    if record.get("demonstration"):
        gaps.append("labelled a demonstration (labels.demonstration)")
    return gaps


def reproduces(record: dict[str, Any]) -> bool:
    """True when :func:`reproduction_gaps` finds none: the record's numbers can test the paper's."""
    return not reproduction_gaps(record)


def study_reproduces(records: list[dict[str, Any]]) -> bool:
    """True when there is a successful record and every successful one :func:`reproduces`."""
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    return bool(ok) and all(reproduces(r) for r in ok)


__all__ = ["PAPER_PROTOCOL", "encoder_roles", "reproduction_gaps", "reproduces", "study_reproduces"]
