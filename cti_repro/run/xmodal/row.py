"""One row of the text <-> image study (Rubio et al. 2017): (model, seed) -> ranks -> metrics -> JSON.

:func:`run_xmodal` is what ``cti-repro xmodal run`` and the ``xmodal_row`` notebook call. Every
test product's text is a query against all test images (``t2i``) and every test image a query
against all test texts (``i2t``); the result stores the 1-based rank of the true match of every
query (``ranks``), so every metric of :mod:`cti_repro.evaluation.xmodal_metrics` can be recomputed,
and ``means`` (percent). Layout: ``<results_dir>/xmodal/<model>_seed<seed>.json``, with the same
provenance fields as a CtI row; a current result (same config hash and data fingerprint) is skipped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cti_repro.config import StudyConfig, apply_sets, load_config
from cti_repro.data.prepare import prepare_catalogue
from cti_repro.data.xmodal_pairs import build_xmodal
from cti_repro.results import git_commit, hardware, is_current, package_versions, write_result
from cti_repro.study import XMODAL_ALL, XMODAL_RECALL_KS, XMODAL_RECALL_PERCENTS

STUDY = "xmodal"


def xmodal_result_path(results_dir: str | Path, model: str, seed: int) -> Path:
    """``<results_dir>/xmodal/<model>_seed<seed>.json``."""
    return Path(results_dir) / STUDY / f"{model}_seed{seed}.json"


def xmodal_seeds(cfg: StudyConfig) -> list[int]:
    """The seeds of this study: ``xmodal.seeds``, or the profile's ``seeds`` when that is empty."""
    return list(cfg.xmodal.seeds or cfg.seeds)


def apply_overrides(cfg: StudyConfig, sets: Sequence[str]) -> StudyConfig:
    """``cfg`` with ``KEY=VALUE`` overrides (dotted keys, YAML values) applied and validated, its
    results moved under ``<results_dir>/overrides/<hash>/`` (:func:`cti_repro.config.apply_sets`).

    Raises:
        ConfigError: malformed item, unknown field, wrong type or value (naming the field).
    """
    return apply_sets(cfg, sets)


def _image_ok(image: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """True where the cached image feature row is not all zero (zero = the image could not be read)."""
    return np.concatenate([np.any(np.asarray(image[i : i + chunk]) != 0, axis=1) for i in range(0, len(image), chunk)]
                          or [np.zeros(0, bool)])


def _gallery(text: np.ndarray, image: np.ndarray, ids: np.ndarray, texts: list[str], n: int, k: int = 5) -> list[dict]:
    """Top-``k`` images of ``n`` evenly spaced text queries (for the report's gallery)."""
    from cti_repro.evaluation.ranking import rank

    if not len(ids) or n <= 0:
        return []
    q = np.unique(np.linspace(0, len(ids) - 1, min(n, len(ids))).round().astype(int))
    idx, scores = rank(np.asarray(text[q]), np.asarray(image), k)
    return [{"query": ids[i], "text": texts[i], "top": ids[idx[r].numpy()].tolist(),
             "scores": np.round(scores[r].numpy(), 6).tolist()} for r, i in enumerate(q)]


def run_xmodal(
    model: str, profile: str = "embedded", seed: int | None = None, out_dir: str | Path | None = None,
    force: bool = False, config_path: str | Path | None = None, cfg: StudyConfig | None = None,
    sets: Sequence[str] = (), progress: bool = True,
) -> Path:
    """Run one (model, seed) of the text <-> image study and write its result JSON (atomically).

    Args:
        model: one of :data:`cti_repro.study.XMODAL_ALL` (:data:`cti_repro.run.xmodal.models.SPECS` says what each is).
        profile: config profile (``embedded``, ``smoke``, ``xmarket``).
        seed: model seed (default: the study's first seed, :func:`xmodal_seeds`).
        out_dir: results folder (default: the profile's ``results_dir``); the file goes to its ``xmodal/``.
        force: recompute even if a current result exists.
        config_path: study config file (default ``./_config.yml``).
        cfg: an already loaded config (overrides ``profile`` / ``config_path``).
        sets: ``KEY=VALUE`` config overrides (:func:`apply_overrides`).
        progress: show progress.

    Returns:
        Path of the result JSON.
    """
    if model not in XMODAL_ALL:
        raise ValueError(f"unknown text-image model {model!r}; expected one of {XMODAL_ALL}")
    cfg = apply_sets(cfg, sets) if cfg is not None else load_config(profile, config_path, overrides=sets)
    seed = xmodal_seeds(cfg)[0] if seed is None else int(seed)
    path = xmodal_result_path(Path(out_dir) if out_dir else cfg.path(cfg.results_dir), model, seed)
    catalogue = prepare_catalogue(cfg)
    fingerprint, config_hash = catalogue.fingerprint(), cfg.xmodal_hash()
    if not force and is_current(path, config_hash, fingerprint):
        print(f"{path}: current result exists, skipped (use --force to recompute)", file=sys.stderr)
        return path

    from cti_repro.device import pick_device
    from cti_repro.evaluation.xmodal_metrics import median_rank_by_group, true_match_ranks, xmodal_means
    from cti_repro.features import load_features
    from cti_repro.run.xmodal import models as zoo

    t0 = time.perf_counter()
    device = pick_device(cfg.train.device)
    fs = load_features(cfg, catalogue, ("image",), device=device)
    image = fs["image"]
    data = build_xmodal(catalogue, cfg.split, cfg.xmodal.text_fields, _image_ok(image))
    if len(data.test) < 2 or len(data.split["train"]) < 2:
        raise ValueError(f"text-image study: too few products with an image and a text ({data.summary()})")
    groups = data.roots if cfg.xmodal.aux_level == "root" else data.leaves
    classes = sorted(set(groups.tolist()))
    class_id = {c: i for i, c in enumerate(classes)}
    labels = np.asarray([class_id[g] for g in groups], np.int64)
    spec = zoo.SPECS[model]
    feats, image_identity = zoo.image_features(cfg, catalogue, spec, image, fs.identities["image"], device)
    encoders = {"image": image_identity}
    net, text_info, kcca_info = None, None, None
    if spec.kind == "kcca":
        emb = zoo.fit_embed_kcca(cfg, data, feats, seed, device, exact=spec.exact)
        text_info, kcca_info = emb.model_info["text_features"], emb.model_info
    elif spec.kind == "two_branch":
        branch = zoo.image_branch(cfg, spec)
        emb, net = zoo.fit_embed_two_branch(cfg, data, feats, labels, len(classes), spec.text, spec.aux, seed, device,
                                            progress, catalogue, branch)
        text_info = emb.model_info["text_features"]
        if branch == "alexnet":  # the image side is the trained CNN: its starting weights are what ran
            image_identity = encoders["image"] = emb.model_info["image_identity"]
    else:
        clip_text, ident = zoo.clip_title_features(cfg, catalogue, device)
        encoders["text"] = ident
        if spec.kind == "clip":
            emb = zoo.embed_clip(data, image, clip_text)
        else:
            emb, net = zoo.fit_embed_clip_heads(cfg, data, image, clip_text, labels, seed, device, progress)
    ran = zoo.what_ran(model, cfg, image_identity, text_info, kcca_info, list(data.fields))
    from cti_repro.run.row import tie_order

    n = len(data.test)
    ids = np.asarray(catalogue.product_ids, dtype=object)[data.test]
    tie_key = tie_order(ids.astype(str), cfg.eval.tie_rule, cfg.eval.tie_seed)  # the CtI rows' tie rule
    ranks = {"t2i": true_match_ranks(emb.text, emb.image, device=device, tie_key=tie_key),
             "i2t": true_match_ranks(emb.image, emb.text, device=device, tie_key=tie_key)}
    roots = data.roots[data.test]
    record = {
        "status": "ok", "study": STUDY, "setting": STUDY, "model": model, "seed": seed, "profile": cfg.profile,
        "config": cfg.to_dict(), "config_hash": config_hash, "data_fingerprint": fingerprint,
        "data": {"source": cfg.data.source, "products": len(catalogue), "text_fields": list(data.fields),
                 **data.summary()},
        "demonstration": cfg.labels.demonstration,
        "ran": ran,
        "encoders": encoders, "feature_stats": fs.stats, "model_info": emb.model_info,
        "n_candidates": n,
        "tie_rule": {"rule": cfg.eval.tie_rule, "seed": cfg.eval.tie_seed},
        "query_ids": ids.tolist(),
        "ranks": {d: r.tolist() for d, r in ranks.items()},
        "means": xmodal_means(ranks, n, XMODAL_RECALL_KS, XMODAL_RECALL_PERCENTS),
        "aux_accuracy": emb.aux_accuracy,
        "per_root_category": {d: median_rank_by_group(r, roots, n) for d, r in ranks.items()},
        "gallery": _gallery(emb.text, emb.image, ids, [data.texts[i] for i in data.test], cfg.xmodal.gallery_queries),
        "training": emb.training,
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "device": hardware(device),
        "versions": {**package_versions(), **_extra_versions()},
        "git_commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(path, record)
    return path


def _extra_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for n in ("gensim", "scikit-learn"):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


__all__ = ["run_xmodal", "xmodal_result_path", "xmodal_seeds", "apply_overrides", "STUDY"]
