"""One row of Table 1: (setting, model, seed) -> scores -> ranking -> metrics -> result JSON.

:func:`run_row` is what ``cti-repro run`` and the row notebook call. Baselines score test
products directly; trained models (CLIP-I / -IA / -ITA) first train their two heads on the
training pairs of the setting. Every result also carries the seen/unseen breakdown (the paper's
Table 3), the top-1 error analysis (Table 2) and the top-10 retrieved products per query (for the
report's gallery).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cti_repro.config import OVERRIDES_DIR, StudyConfig, beyond_the_paper, load_config
from cti_repro.data.pairs import SettingData, build_setting
from cti_repro.data.prepare import prepare_catalogue
from cti_repro.results import git_commit, hardware, is_current, package_versions, result_path, write_result
from cti_repro.run.row_checks import NoAttributesError, UnreadableImagesError, check_attributes, check_images
from cti_repro.study import AP_NORMS, BASELINES, FEATURES_BY_MODEL, MODALITIES, MODELS, TRAINED


@dataclasses.dataclass
class EvalSetting(SettingData):
    """A setting under the study's evaluation protocol (``book/deviations.md`` row 6).

    ``query_pool`` (``eval.queries``): ``test``, the category labels of the test products (the
    default), or ``all``, every category label of the setting (the paper's 5,471 / 34 / 4,100); a
    query with no relevant candidate scores 0 on every metric and counts in the means.
    ``candidate_pool`` (``eval.candidates``): ``test``, the test products, or ``all``, every product
    of the catalogue (the first author's "for all the products in the dataset", baselines only).
    """

    query_pool: str = "test"
    candidate_pool: str = "test"

    @cached_property
    def queries(self) -> list[str]:
        return sorted(set(self.labels.tolist())) if self.query_pool == "all" else SettingData.queries.func(self)

    @property
    def candidates(self) -> np.ndarray:
        return np.arange(len(self.labels)) if self.candidate_pool == "all" else self.split["test"]


def tie_order(ids: np.ndarray, rule: str = "id", seed: int = 0) -> np.ndarray:
    """Tie-break rank of each candidate (lower ranks first among equal scores).

    ``id``: ascending product id (deterministic, but on XMarket ISBN-like ASINs of Books sort
    before ``B0...`` ones and win every tie); ``random``: a permutation seeded by ``seed``, which
    favours no id range and is the same for every model of a run.
    """
    if rule == "random":
        return np.random.default_rng(seed).permutation(len(ids))
    if rule != "id":
        raise ValueError(f"eval.tie_rule: id or random, got {rule!r}")
    return np.argsort(np.argsort(ids, kind="stable"), kind="stable")  # rank of each id, ascending


def _evaluate(
    q_emb: np.ndarray | None, c_emb: np.ndarray | None, scores, data: SettingData, tie_key: np.ndarray,
    cfg: StudyConfig, device: str, normalize: bool = True,
) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Top-10 of every query and its metrics under each AP normalisation, in one fused pass.

    ``scores`` (BM25: scipy sparse, densified one chunk at a time) or the two embedding blocks;
    bit-identical to ranking to depth max R and evaluating that (``tests/evaluation``).
    """
    from cti_repro.evaluation.evaluate import evaluate_embeddings, evaluate_scores

    cand_labels = data.labels[data.candidates]
    common = dict(tie_key=tie_key, chunk_size=cfg.eval.chunk_size, ap_norms=AP_NORMS)
    if scores is not None:
        idx, per_norm = evaluate_scores(scores, data.queries, cand_labels, **common)
    else:
        idx, per_norm = evaluate_embeddings(np.asarray(q_emb), np.asarray(c_emb), data.queries, cand_labels,
                                            device=device, normalize=normalize, **common)
    return np.asarray(idx.cpu()), per_norm


def _means(per_query: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    out = {}
    for m, v in per_query.items():
        v = np.asarray(v, dtype=float)
        if mask is not None:
            v = v[mask]
        out[m] = float(v.mean()) if v.size else float("nan")
    return out


def graded(idx: np.ndarray, data: SettingData, k: int = 10) -> dict[str, np.ndarray]:
    """Per-query ``nDCG@10`` and ``TreeDist@10`` (:mod:`cti_repro.evaluation.graded`) of a top-k.

    Off-path results count as the longest category path's length in ``TreeDist@10``.
    """
    from cti_repro.data.tree import distance_counts, on_path_distances, topk_distances
    from cti_repro.evaluation.graded import graded_metrics

    cand = data.candidates
    dist = on_path_distances(data.queries, data.labels[cand].tolist(), [data.paths[i] for i in cand])
    off_path = max((len(p) for p in data.paths), default=1)
    return graded_metrics(topk_distances(dist, idx[:, :k]), distance_counts(dist), off_path=off_path, k=k)


def error_analysis(top1: np.ndarray, data: SettingData) -> dict[str, Any]:
    """Table 2: classify each wrong top-1 result as in the same category tree or a different one.

    "Same tree" means the retrieved product's label and the query lie on one root-to-leaf path
    (one is an ancestor of the other in some product's path); ``d = depth(c_p) - depth(c)``.
    """
    depth_pair: dict[tuple[str, str], int] = {}
    for path in data.paths:
        for i, a in enumerate(path):
            for j in range(len(path)):
                if i != j:
                    depth_pair.setdefault((a, path[j]), j - i)
    cand = data.candidates
    same = diff = 0
    d_hist: dict[int, int] = {}
    for q, j in zip(data.queries, top1):
        pred = data.labels[cand[j]]
        if pred == q:
            continue
        d = depth_pair.get((q, pred))
        if d is None:
            diff += 1
        else:
            same += 1
            d_hist[d] = d_hist.get(d, 0) + 1
    return {"same_tree": same, "different_tree": diff, "same_tree_depth_diff": {str(k): v for k, v in sorted(d_hist.items())}}


def _product_tensors(fs, names: tuple[str, ...], rows: np.ndarray, device: str, pool: str = "mean"):
    """Features of products ``rows``; with attention pooling ``attributes`` is a padded [n, A] index."""
    import torch

    out = {}
    for m in names:
        if m == "attributes" and pool == "attention":
            from cti_repro.features import padded_rows

            out[m] = torch.as_tensor(padded_rows(fs["attribute_index"], fs["attribute_offsets"], rows), device=device)
        else:
            out[m] = torch.as_tensor(np.asarray(fs[m][rows]), device=device)
    return out


def _train_and_embed(model_name: str, fs, data: SettingData, cfg: StudyConfig, seed: int, device: str, progress: bool):
    """Train the heads of a CLIP-I/-IA/-ITA model; return query/candidate embeddings and training info."""
    import torch

    from cti_repro.models.heads import CtIModel
    from cti_repro.models.loss import build_loss
    from cti_repro.models.train import PairTensors, train

    mods = MODALITIES[model_name]
    pool = cfg.model.attribute_pool if "attributes" in mods else "mean"
    cat_index = fs.category_index()
    cat_feat = np.asarray(fs["category"])
    label_ids = {c: i for i, c in enumerate(sorted(set(data.labels.tolist())))}

    def pairs(split: str) -> PairTensors:
        rows, labels = data.pairs(split)
        return PairTensors(
            category=torch.as_tensor(cat_feat[[cat_index[c] for c in labels]], device=device),
            product=_product_tensors(fs, mods, rows, device, pool),
            labels=torch.as_tensor([label_ids[c] for c in labels], device=device),
        )

    torch.manual_seed(seed)
    dims = {m: int(fs["attribute_values" if m == "attributes" and pool == "attention" else m].shape[1]) for m in mods}
    model = CtIModel(mods, dims, category_dim=cat_feat.shape[1], head=cfg.model.head, d=cfg.model.dim,
                     dropout=cfg.model.dropout, attribute_pool=pool, normalize_modalities=cfg.model.normalize_modalities,
                     learn_tau=cfg.loss.learn_tau, tau=cfg.loss.tau, bn_hidden=cfg.model.bn_hidden)
    if pool == "attention":
        model.set_attribute_table(torch.from_numpy(np.array(fs["attribute_values"])))  # a copy of the memmap
    extra = dict(similarity=cfg.loss.similarity, logit_scale=model.logit_scale)  # refused by non-InfoNCE losses
    if cfg.loss.kind in ("tree_soft", "tree_margin"):  # label ids index a [L, L] tree-distance table
        from cti_repro.data.tree import label_distance_matrix

        extra.update(label_dist=label_distance_matrix(list(label_ids), data.paths), decay=cfg.loss.tree_decay,
                     beta=cfg.loss.tree_beta, margin=cfg.loss.tree_margin)
    loss_fn = build_loss(cfg.loss.kind, tau=cfg.loss.tau, lam=cfg.loss.lambda_, mask_same_label=cfg.loss.mask_same_label,
                         **extra)
    batch = cfg.train.batch_size[data.setting]
    result = train(model, pairs("train"), pairs("val"), loss_fn, cfg.train, batch, seed=seed, device=device,
                   progress=progress)
    with torch.no_grad():
        q = model.encode_category(torch.as_tensor(cat_feat[[cat_index[c] for c in data.queries]], device=device))
        if pool == "attention":  # chunks: the gathered [n, A, d] attributes would not fit at the paper's scale
            cand = data.candidates
            c = torch.cat([model.encode_product(_product_tensors(fs, mods, cand[i : i + 4096], device, pool))
                           for i in range(0, len(cand), 4096)])
        else:
            c = model.encode_product(_product_tensors(fs, mods, data.candidates, device))
    return q.float().cpu().numpy(), c.float().cpu().numpy(), result, model


def _import_info(meta: dict) -> dict[str, Any]:
    """``{"import": ...}``: the XMarket import's source, file categories and counts (none otherwise)."""
    from cti_repro.data.import_meta import import_provenance

    info = import_provenance(meta)
    return {"import": info} if info else {}


def run_row(
    setting: str,
    model: str,
    profile: str = "embedded",
    seed: int | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    config_path: str | Path | None = None,
    cfg: StudyConfig | None = None,
    progress: bool = True,
) -> Path:
    """Run one row of Table 1 and write its result JSON (atomically).

    Args:
        setting: ``all``, ``most_general`` or ``most_specific``.
        model: one of :data:`cti_repro.study.MODELS`.
        profile: config profile (``embedded``, ``smoke``, ``xmarket``).
        seed: model seed (default: the profile's first seed).
        out_dir: results folder (default: the profile's ``results_dir``).
        force: recompute even if a current result exists.
        config_path: study config file (default ``./_config.yml``).
        cfg: an already loaded config (overrides ``profile`` / ``config_path``).
        progress: show progress bars.

    Returns:
        Path of the result JSON.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    cfg = cfg or load_config(profile, config_path)
    seed = cfg.seeds[0] if seed is None else seed
    results_dir = Path(out_dir) if out_dir else cfg.path(cfg.results_dir)
    path = result_path(results_dir, setting, model, seed)
    catalogue = prepare_catalogue(cfg)
    fingerprint = catalogue.fingerprint()
    config_hash = cfg.hash()
    if not force and is_current(path, config_hash, fingerprint):
        print(f"{path}: current result exists, skipped (use --force to recompute)", file=sys.stderr)
        return path

    from cti_repro.device import pick_device
    from cti_repro.features import load_features

    check_attributes(catalogue, cfg, model)
    t0 = time.perf_counter()
    device = pick_device(cfg.train.device)
    if cfg.eval.candidates == "all" and model not in BASELINES:
        raise ValueError(f"eval.candidates: all ranks every product, training ones included: baselines only, not {model}")
    base = build_setting(catalogue, setting, cfg.split)
    data = EvalSetting(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
                       query_pool=cfg.eval.queries, candidate_pool=cfg.eval.candidates)
    ids = np.asarray(catalogue.product_ids, dtype=object)[data.candidates]
    tie_key = tie_order(ids, cfg.eval.tie_rule, cfg.eval.tie_seed)
    parts = FEATURES_BY_MODEL[model]
    if cfg.model.attribute_pool == "attention" and "attributes" in MODALITIES.get(model, ()):
        from cti_repro.features import RAGGED_PARTS

        parts = (*parts, *RAGGED_PARTS)
    fs = load_features(cfg, catalogue, parts, device=device)
    images = check_images(fs, len(catalogue), cfg, model)
    training: dict[str, Any] | None = None
    model_info: dict[str, Any] = {}
    q_emb = c_emb = scores = None
    if model == "BM25":
        from cti_repro.models.baselines import bm25_scores

        titles = [catalogue.titles[i] for i in data.candidates]
        scores = bm25_scores(data.queries, titles, cfg.bm25.k1, cfg.bm25.b, cfg.bm25.epsilon, sparse=True)
        model_info = {"k1": cfg.bm25.k1, "b": cfg.bm25.b, "epsilon": cfg.bm25.epsilon, "field": "title"}
    elif model in ("MPNet", "CLIP"):
        cat_index = fs.category_index()
        q_part, c_part = ("category", "title") if model == "MPNet" else ("clip_category", "image")
        q_emb = np.asarray(fs[q_part])[[cat_index[c] for c in data.queries]]
        c_emb = np.asarray(fs[c_part])[data.candidates]
        model_info = {"query": q_part, "candidate": c_part, "similarity": "cosine"}
        if model == "CLIP":
            model_info["prompt"] = cfg.encoders.clip_prompt
    else:
        q_emb, c_emb, tr, net = _train_and_embed(model, fs, data, cfg, seed, device, progress)
        training = tr.to_dict()
        model_info = net.describe()
        # a variant (extension, --set overrides, ablation, --out elsewhere) keeps Table 1's checkpoint
        variant = bool(beyond_the_paper(cfg)) or OVERRIDES_DIR in Path(cfg.results_dir).parts or (
            Path(results_dir).resolve() != cfg.path(cfg.results_dir).resolve())
        _save_checkpoint(cfg, setting, model, seed, net, variant)
    normalize = model not in TRAINED or cfg.loss.similarity == "cosine"
    idx, per_norm = _evaluate(q_emb, c_emb, scores, data, tie_key, cfg, device, normalize=normalize)
    per_query = {**per_norm[cfg.eval.ap_norm], **graded(idx, data)}  # the six metrics + GRADED_METRICS
    seen = data.seen
    record = {
        "status": "ok",
        "setting": setting, "model": model, "seed": seed, "profile": cfg.profile,
        "config": cfg.to_dict(), "config_hash": config_hash, "data_fingerprint": fingerprint,
        "data": {"source": cfg.data.source, "products": len(catalogue), **data.summary(), **images,
                 **_import_info(catalogue.meta)},
        "demonstration": cfg.labels.demonstration,
        "beyond_the_paper": beyond_the_paper(cfg),  # {} for the paper's set-up
        "held_out_categories": sorted(data.held_out),
        "encoders": fs.identities, "feature_stats": fs.stats, "model_info": model_info,
        "ap_norm": cfg.eval.ap_norm,
        "ranking": {"tie_rule": cfg.eval.tie_rule, "tie_seed": cfg.eval.tie_seed if cfg.eval.tie_rule == "random" else None,
                    "candidates": cfg.eval.candidates, "n_candidates": int(len(data.candidates)),
                    "queries": cfg.eval.queries,
                    "queries_without_relevant": int(len(set(data.queries) - set(data.labels[data.candidates].tolist()))),
                    "similarity": "cosine" if normalize else "dot"},
        "queries": list(data.queries),
        "seen": seen.tolist(),
        "per_query": {m: np.round(np.asarray(v, float), 6).tolist() for m, v in per_query.items()},
        "means": _means(per_query),
        "means_by_ap_norm": {n: _means(pq) for n, pq in per_norm.items()},
        "subsets": {"seen": _means(per_query, seen), "unseen": _means(per_query, ~seen),
                    "n_seen": int(seen.sum()), "n_unseen": int((~seen).sum())},
        "error_analysis": error_analysis(idx[:, 0], data) if len(idx) else {},
        "top10": {q: ids[idx[i, :10]].tolist() for i, q in enumerate(data.queries)},
        "training": training,
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "device": hardware(device),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(path, record)
    return path


def _save_checkpoint(cfg: StudyConfig, setting: str, model: str, seed: int, net, variant: bool = False) -> Path:
    """``<cache_dir>/checkpoints/<setting>/<model>_seed<seed>.pt``; a variant's under ``beyond/<config hash>/``."""
    import io

    import torch

    from cti_repro.io_utils import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"state_dict": net.state_dict(), "describe": net.describe()}, buf)
    folder = cfg.path(cfg.cache_dir) / "checkpoints"
    if variant or beyond_the_paper(cfg):  # a variant must not overwrite the Table 1 checkpoint
        folder = folder / "beyond" / cfg.hash()[:12]
    return atomic_write_bytes(folder / setting / f"{model}_seed{seed}.pt", buf.getvalue())


__all__ = ["run_row", "error_analysis", "graded", "check_images", "UnreadableImagesError", "check_attributes",
           "NoAttributesError"]
