"""One row of the fine-grained text <-> image study: (MLF | Kaleido-BERT, seed) -> ranks -> metrics -> JSON.

:func:`run_finegrained` is what ``cti-repro finegrained run`` and ``cti-repro reproduce`` call. The
task is the text-image study's (:func:`cti_repro.data.xmodal_pairs.build_xmodal`: one text and one
image per product, the CtI study's product split), evaluated two ways on the test products:

- ``sampled``: the Fashion-Gen protocol of both papers: each query (a text, or an image) ranks its
  match among ``finegrained.negatives`` (100) random non-matching candidates, drawn once per
  direction with ``finegrained.eval_seed`` (:mod:`cti_repro.evaluation.sampled_ranking`);
  Recall@1/5/10 (``means`` keys ``R@K_t2i@101``...);
- ``full``: the text-image study's protocol: every test candidate (``R@K_t2i``, ``MedR%_t2i``...,
  :func:`cti_repro.evaluation.xmodal_metrics.xmodal_means`). The cross-encoder scores N * N pairs
  for it, so it is skipped (and the record says so) when that exceeds ``finegrained.max_full_pairs``.

Layout: ``<results_dir>/finegrained/<model>_seed<seed>.json``; a current result (same config hash
and data fingerprint) is skipped unless forced.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cti_repro.config import StudyConfig, load_config

from cti_repro.study import FINEGRAINED_MODELS as MODELS
from cti_repro.study import FINEGRAINED_RECALL_KS as RECALL_KS

STUDY = "finegrained"


def finegrained_result_path(results_dir: str | Path, model: str, seed: int) -> Path:
    """``<results_dir>/finegrained/<model>_seed<seed>.json``."""
    return Path(results_dir) / STUDY / f"{model}_seed{seed}.json"


def finegrained_seeds(cfg: StudyConfig) -> list[int]:
    """``finegrained.seeds``, or the profile's ``seeds`` when that is empty."""
    return list(cfg.finegrained.seeds or cfg.seeds)


def finegrained_hash(cfg: StudyConfig) -> str:
    """What changes a result of this study: the CtI hash's inputs (data, split) plus ``finegrained``."""
    from cti_repro.io_utils import stable_hash

    x = cfg.to_dict()["finegrained"]
    x.pop("seeds", None)
    return stable_hash({"study": cfg.hash(), "finegrained": x})


def sampled_means(ranks: dict[str, np.ndarray], candidates: int) -> dict[str, float]:
    """``R@K_<direction>@<candidates>`` (percent) of the sampled protocol's ranks."""
    from cti_repro.evaluation.xmodal_metrics import recall_at_k

    return {f"R@{k}_{d}@{candidates}": recall_at_k(r, k) for d, r in ranks.items() for k in RECALL_KS}


def per_root(ranks: dict[str, np.ndarray], roots: np.ndarray) -> dict[str, dict[str, dict]]:
    """Per direction and root category of the query: queries and sampled Recall@1/5/10 (RQ2.1)."""
    from cti_repro.evaluation.xmodal_metrics import recall_at_k

    out: dict[str, dict[str, dict]] = {}
    for d, r in ranks.items():
        g = np.asarray(roots, dtype=object)
        out[d] = {str(c): {"queries": int((g == c).sum()), **{f"R@{k}": recall_at_k(r[g == c], k) for k in RECALL_KS}}
                  for c in sorted(set(g.tolist()))}
    return out


def _negatives(n: int, rows: np.ndarray, k: int, seed: int) -> dict[str, np.ndarray]:
    from cti_repro.evaluation.sampled_ranking import sample_negatives

    s_t2i, s_i2t = np.random.SeedSequence(seed).spawn(2)
    return {"t2i": sample_negatives(n, rows, k, int(s_t2i.generate_state(1)[0])),
            "i2t": sample_negatives(n, rows, k, int(s_i2t.generate_state(1)[0]))}


def _fit_mlf(cfg: StudyConfig, data, feats: dict, rows: np.ndarray, neg: dict[str, np.ndarray], seed: int,
             device: str) -> tuple[dict, dict, dict, dict]:
    """Train MLF (queries: test positions ``rows``, their negatives ``neg`` per direction); return (full ranks, sampled ranks, model info, training) on the test products."""
    import torch

    from cti_repro.evaluation.sampled_ranking import sampled_ranks_embeddings
    from cti_repro.evaluation.xmodal_metrics import true_match_ranks
    from cti_repro.models.finegrained.cnn import STAGE_CHANNELS
    from cti_repro.models.finegrained.mlf import MLF, Vocabulary, embed, train_mlf

    m = cfg.finegrained.mlf
    vocab = Vocabulary([data.texts[i] for i in data.split["train"]], m.vocab_min_count)
    ids = vocab.encode(data.texts, m.max_words)
    torch.manual_seed(seed)
    net = MLF(STAGE_CHANNELS[cfg.finegrained.cnn.backbone], len(vocab), m.word_dim, m.hidden, m.dim)
    training = train_mlf(net, feats["cnn_levels"], ids, data.split["train"], m.epochs, m.lr, m.batch_size, m.margin,
                         m.hardest_negative, seed, device)
    t, i = embed(net, feats["cnn_levels"], ids, data.test, device)
    full = {"t2i": true_match_ranks(t, i), "i2t": true_match_ranks(i, t)}
    sampled = {"t2i": sampled_ranks_embeddings(t, i, rows, neg["t2i"]),
               "i2t": sampled_ranks_embeddings(i, t, rows, neg["i2t"])}
    info = {"model": "MLF", **net.describe(), "loss": "bidirectional hinge", "margin": m.margin,
            "hardest_negative": m.hardest_negative, "text_encoder": "bidirectional GRU over word embeddings",
            "pairs_scored_per_query": {"sampled": 0, "full": 0, "note": "dual encoder: one embedding per text and image"}}
    return full, sampled, info, training


def _fit_kaleido(cfg: StudyConfig, data, feats: dict, rows: np.ndarray, neg: dict[str, np.ndarray], seed: int,
                 device: str) -> tuple[dict | None, dict, dict, dict, dict]:
    """Fine-tune Kaleido-BERT; return (full ranks or None, sampled ranks, model info, training, cost)."""
    import torch

    from cti_repro.evaluation.sampled_ranking import ranks_among, ranks_from_matrix
    from cti_repro.models.finegrained.kaleido import KaleidoBERT, PairScorer, load_bert, tokenize_texts, train_kaleido

    k = cfg.finegrained.kaleido
    torch.manual_seed(seed)
    bert, tok, ident = load_bert(k.init, k.layers)
    ids, mask = tokenize_texts(tok, data.texts, k.max_text_tokens)
    patches = feats["cnn_kaleido"]
    net = KaleidoBERT(bert, int(patches.shape[2])).to(device)
    scorer = PairScorer(net, ids, mask, patches, k.score_batch_size, device)
    train_rows = data.split["train"]
    if 0 < k.train_products < len(train_rows):  # the embedded profile's budget: a seeded subset
        train_rows = np.sort(np.random.default_rng(seed).choice(train_rows, k.train_products, replace=False))
    training = train_kaleido(net, scorer, train_rows, k.epochs, k.lr, k.batch_size, k.negatives_per_positive,
                             seed)
    te = data.test
    n = len(te)
    scorer.pairs, scorer.seconds = 0, 0.0
    full = None
    if n * n <= cfg.finegrained.max_full_pairs:
        # one N x N matrix serves both directions and both protocols: S[text i, image j]
        s = scorer(np.repeat(te, n), np.tile(te, n)).reshape(n, n)
        full = {"t2i": ranks_from_matrix(s), "i2t": ranks_from_matrix(s.T)}
        sampled = {"t2i": ranks_among(s[rows, rows], np.take_along_axis(s[rows], neg["t2i"], 1), rows, neg["t2i"]),
                   "i2t": ranks_among(s[rows, rows], np.take_along_axis(s.T[rows], neg["i2t"], 1), rows, neg["i2t"])}
    else:
        sampled = {}
        for d in ("t2i", "i2t"):
            cand = np.concatenate([rows[:, None], neg[d]], axis=1)  # [Q, 1 + K] test positions
            q = np.broadcast_to(rows[:, None], cand.shape)
            t_rows, i_rows = (te[q], te[cand]) if d == "t2i" else (te[cand], te[q])
            sc = scorer(t_rows, i_rows).reshape(cand.shape)
            sampled[d] = ranks_among(sc[:, 0], sc[:, 1:], rows, neg[d])
    cost = {"pairs_scored": int(scorer.pairs), "scoring_seconds": round(scorer.seconds, 3),
            "ms_per_pair": round(1000 * scorer.seconds / max(scorer.pairs, 1), 4),
            "pairs_per_query": {"sampled": int(neg["t2i"].shape[1] + 1), "full": n if full is not None else None},
            "full_ranking": "computed" if full is not None else
            f"skipped: {n} x {n} = {n * n:,} pairs > finegrained.max_full_pairs = {cfg.finegrained.max_full_pairs:,}",
            "training_pairs": int(training["pairs"])}
    info = {"model": "Kaleido-BERT (fine-tuned, ITM head)", **net.describe(), "init": ident, "levels": k.levels,
            "patches": int(patches.shape[1]), "max_text_tokens": k.max_text_tokens, "pretraining_tasks": "not run"}
    return full, sampled, info, training, cost


def run_finegrained(
    model: str, profile: str = "embedded", seed: int | None = None, out_dir: str | Path | None = None,
    force: bool = False, config_path: str | Path | None = None, cfg: StudyConfig | None = None,
    sets: Sequence[str] = (), progress: bool = False,
) -> Path:
    """Run one (model, seed) of the fine-grained study and write its result JSON (atomically).

    Args:
        model: ``MLF`` or ``Kaleido-BERT``.
        profile, config_path, sets: the config (``--set`` overrides as ``KEY=VALUE``); ``cfg`` replaces them.
        seed: model seed (default: the study's first seed).
        out_dir: results folder (default: the profile's ``results_dir``); the file goes to its ``finegrained/``.
        force: recompute even if a current result exists.

    Returns:
        Path of the result JSON.
    """
    if model not in MODELS:
        raise ValueError(f"unknown fine-grained model {model!r}; expected one of {MODELS}")
    from cti_repro.data.prepare import prepare_catalogue
    from cti_repro.device import pick_device
    from cti_repro.results import is_current

    cfg = cfg or load_config(profile, config_path, list(sets))
    seed = finegrained_seeds(cfg)[0] if seed is None else int(seed)
    path = finegrained_result_path(Path(out_dir) if out_dir else cfg.path(cfg.results_dir), model, seed)
    catalogue = prepare_catalogue(cfg)
    fingerprint, config_hash = catalogue.fingerprint(), finegrained_hash(cfg)
    if not force and is_current(path, config_hash, fingerprint):
        print(f"{path}: current result exists, skipped (use --force to recompute)", file=sys.stderr)
        return path
    t0 = time.perf_counter()
    device = pick_device(cfg.train.device)
    threads = _one_thread_on_cpu(device)
    try:
        return _run(model, cfg, catalogue, seed, path, fingerprint, config_hash, device, t0, progress)
    finally:
        if threads:
            import torch

            torch.set_num_threads(threads)


def _one_thread_on_cpu(device: str) -> int:
    """On the CPU run the row on one thread (returns the old count to restore, else 0): these are small
    models, and on a shared machine several threads spin against each other (MLF's training measured
    20 s per epoch on 2 threads against 0.5-0.9 s on 1 under load); one thread is also reproducible."""
    import torch

    if device != "cpu":
        return 0
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    return old


def _run(model: str, cfg: StudyConfig, catalogue, seed: int, path: Path, fingerprint: str, config_hash: str,
         device: str, t0: float, progress: bool) -> Path:
    from cti_repro.data.xmodal_pairs import build_xmodal
    from cti_repro.evaluation.sampled_ranking import query_subsample
    from cti_repro.evaluation.xmodal_metrics import xmodal_means
    from cti_repro.models.finegrained.cnn import load_cnn_features
    from cti_repro.results import git_commit, hardware, package_versions, write_result
    from cti_repro.study import XMODAL_RECALL_KS, XMODAL_RECALL_PERCENTS

    feats, cnn_ident, cnn_stats = load_cnn_features(cfg, catalogue, device, progress)
    ok = np.asarray(feats["cnn_levels"]).any(axis=1)
    data = build_xmodal(catalogue, cfg.split, cfg.finegrained.text_fields, ok)
    if len(data.test) < 2 or len(data.split["train"]) < 2:
        raise ValueError(f"fine-grained study: too few products with an image and a text ({data.summary()})")
    x = cfg.finegrained
    rows = query_subsample(len(data.test), x.max_queries, x.eval_seed)  # test positions of the sampled queries
    neg = _negatives(len(data.test), rows, x.negatives, x.eval_seed)
    t_fit = time.perf_counter()
    encoders: dict[str, Any] = {"image": cnn_ident}
    if model == "MLF":
        full, sampled, info, training = _fit_mlf(cfg, data, feats, rows, neg, seed, device)
        cost = {"pairs_scored": 0, "pairs_per_query": {"sampled": 0, "full": 0}, "full_ranking": "computed"}
    else:
        full, sampled, info, training, cost = _fit_kaleido(cfg, data, feats, rows, neg, seed, device)
        encoders["text"] = info["init"]
    n, cands = len(data.test), int(neg["t2i"].shape[1]) + 1
    ids = np.asarray(catalogue.product_ids, dtype=object)[data.test]
    means = sampled_means(sampled, cands)
    if full is not None:
        means.update(xmodal_means(full, n, XMODAL_RECALL_KS, XMODAL_RECALL_PERCENTS))
    record = {
        "status": "ok", "study": STUDY, "setting": STUDY, "model": model, "seed": seed, "profile": cfg.profile,
        "config": cfg.to_dict(), "config_hash": config_hash, "data_fingerprint": fingerprint,
        "data": {"source": cfg.data.source, "products": len(catalogue), "text_fields": list(data.fields),
                 **data.summary()},
        "demonstration": cfg.labels.demonstration, "encoders": encoders, "feature_stats": cnn_stats,
        "model_info": info, "n_candidates": n,
        "protocol": {"negatives": cands - 1, "candidates_per_query": cands, "eval_seed": x.eval_seed,
                     "queries": int(len(rows)), "full_ranking": full is not None},
        "query_ids": ids.tolist(), "eval_rows": rows.tolist(),
        "ranks_sampled": {d: r.tolist() for d, r in sampled.items()},
        "ranks": {d: r.tolist() for d, r in full.items()} if full is not None else None,
        "means": means,
        "per_root_category": per_root(sampled, data.roots[data.test][rows]),
        "cost": cost, "training": training,
        "timing": {"features_s": round(t_fit - t0, 3), "fit_and_rank_s": round(time.perf_counter() - t_fit, 3)},
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "device": {**hardware(device), "torch_threads": torch_threads()}, "versions": package_versions(), "git_commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(path, record)
    return path


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def load_finegrained_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every readable record of this study (``<results_dir>/finegrained/*_seed*.json``)."""
    from cti_repro.results import read_result

    recs = [read_result(p) for p in sorted((Path(results_dir) / STUDY).glob("*_seed*.json"))]
    return [r for r in recs if r]


__all__ = ["run_finegrained", "finegrained_result_path", "finegrained_seeds", "finegrained_hash", "sampled_means",
           "per_root", "load_finegrained_results", "MODELS", "STUDY"]
