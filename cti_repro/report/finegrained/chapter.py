"""The fine-grained text <-> image chapter: our MLF and Kaleido-BERT rows beside the papers' Fashion-Gen numbers.

:func:`chapter_md` writes the chapter's generated part (``runs/_book/fragments/finegrained.md``,
included by ``book/finegrained.md``) from the records of :mod:`cti_repro.run.finegrained.row`:

- whether the rows are demonstrations (profile, data, random CNN weights, the BERT checkpoint),
  read from the records, never assumed;
- RQ2.3: both models side by side, Recall@1/5/10 of the 1 + 100 protocol in both directions,
  mean over seeds with a 95 % two-way bootstrap interval (queries and seeds,
  :func:`cti_repro.report.stats.bootstrap_ci`), beside the published Fashion-Gen values
  (:func:`published_finegrained`; "not found" where no source states one);
- the full-ranking protocol of the text-image study, where it was computed;
- RQ2.1: sampled Recall per root category of the query product;
- the cost: pairs scored per query, milliseconds per pair, each row's run time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cti_repro.report.book_pages import md_table
from cti_repro.report.common import ok_records
from cti_repro.report.stats import bootstrap_ci
from cti_repro.study import FINEGRAINED_MODELS as MODELS
from cti_repro.study import FINEGRAINED_RECALL_KS as KS

PUBLISHED_KEY = {"MLF": "mlf", "Kaleido-BERT": "kaleido_bert"}
DIRECTIONS = {"t2i": ("text → image", "TIR"), "i2t": ("image → text", "ITR")}  # our key -> (label, the papers' key)


def published_finegrained() -> dict[str, Any]:
    """The ``finegrained`` section of ``cti_repro/resources/published.yml``."""
    from cti_repro.report.paper import published

    return published()["finegrained"]


def _records(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(ok_records(records), key=lambda r: r.get("seed", 0)):
        if r.get("study") == "finegrained":
            out.setdefault(r["model"], []).append(r)
    return out


def _interval(recs: list[dict], key: str, direction: str, k: int) -> tuple[float, float, float]:
    """Mean and 95 % bootstrap interval of Recall@k (percent) over seeds x queries."""
    rows = [np.asarray(r[key][direction]) for r in recs if r.get(key)]
    if not rows or len({len(x) for x in rows}) != 1:  # the same queries in every seed, or no pooling
        rows = rows[:1]
    if not rows:
        return float("nan"), float("nan"), float("nan")
    return bootstrap_ci(100.0 * (np.stack(rows) <= k))


def _cell(m: float, lo: float, hi: float) -> str:
    return "—" if not np.isfinite(m) else f"{m:.1f} [{lo:.1f}, {hi:.1f}]"


def demonstration_md(records: list[dict]) -> str:
    """One paragraph, from the records, saying whether (and why) the rows are demonstrations."""
    recs = [r for rs in _records(records).values() for r in rs]
    if not recs:
        return ""
    why = []
    for r in recs:
        d = r.get("data") or {}
        why.append(f"profile `{r.get('profile')}` on a {d.get('source')} catalogue of {int(d.get('products', 0)):,} "
                   "products")
        for role, e in (r.get("encoders") or {}).items():
            if not e.get("pretrained", True):
                why.append(f"the {role} CNN {e.get('name')} has random weights ({e.get('weights')})")
            if role == "text" and e.get("layers") and e.get("layers") != e.get("layers_in_checkpoint"):
                why.append(f"Kaleido-BERT starts from {e.get('name')} ({e.get('weights')}), "
                           f"{e.get('layers')} of its {e.get('layers_in_checkpoint')} layers")
    why = list(dict.fromkeys(why))
    if any(r.get("demonstration") for r in recs) or any("random" in w for w in why):
        return ("**Demonstration, not a reproduction.** These rows show that the study runs end to end: "
                + "; ".join(why) + ". Their numbers cannot be compared with the papers' Fashion-Gen numbers "
                "and neither confirm nor refute them.")
    return "Rows run on: " + "; ".join(why) + "."


def side_by_side(records: list[dict]) -> pd.DataFrame:
    """RQ2.3: Recall@K of the 1 + 100 protocol, per model and direction, ours beside the published value."""
    pub = published_finegrained()
    by_model = _records(records)
    rows = []
    for model in MODELS:
        recs = by_model.get(model, [])
        for d, (label, pkey) in DIRECTIONS.items():
            row = {"model": model, "direction": label, "seeds": len(recs),
                   "queries": recs[0]["protocol"]["queries"] if recs else 0,
                   "candidates": recs[0]["protocol"]["candidates_per_query"] if recs else "—"}
            for k in KS:
                row[f"ours R@{k}"] = _cell(*_interval(recs, "ranks_sampled", d, k)) if recs else "not run"
                v = pub[PUBLISHED_KEY[model]]["fashion_gen"][pkey][f"R@{k}"]
                row[f"Fashion-Gen R@{k}"] = "not found" if v is None else f"{v:.2f}"
            rows.append(row)
    return pd.DataFrame(rows)


def chance_md(records: list[dict], full: bool = False) -> str:
    """What a model with random scores expects: Recall@K = K / candidates (and a median rank of 50 %
    of the candidates on the full ranking); empty when the rows disagree on the candidate count.

    The papers' numbers are far above it; a demonstration row near it has learnt nothing a reader can
    see, which the table alone does not say. ``full``: the full ranking's candidates, else the
    sampled protocol's.
    """
    recs = [r for rs in _records(records).values() for r in rs]
    n = sorted({r.get("n_candidates") for r in recs if r.get("ranks") and r.get("n_candidates")} if full else
               {(r.get("protocol") or {}).get("candidates_per_query") for r in recs} - {None})
    if len(n) != 1:
        return ""
    return (("Chance level (random scores) over all test candidates is Recall@K = K / " if full else
             "Chance level (random scores) on this protocol is Recall@K = K / ") + f"{n[0]}: "
            + ", ".join(f"R@{k} {100.0 * min(k, n[0]) / n[0]:.1f}" for k in KS) + (", MedR % 50." if full else "."))


def paired_difference(records: list[dict], first: str = "Kaleido-BERT", second: str = "MLF") -> pd.DataFrame:
    """RQ2.3 directly: ``first`` minus ``second`` in Recall@K (points) on the same queries and negatives.

    Both models see the same sampled queries and negatives (``finegrained.eval_seed``), so the
    difference is taken per query and per seed both ran, with a 95 % two-way bootstrap interval; an
    interval that excludes 0 is a difference this many queries and seeds can show. Empty when the two
    were not run on the same queries.
    """
    by_model = _records(records)
    a = {r["seed"]: r for r in by_model.get(first, [])}
    b = {r["seed"]: r for r in by_model.get(second, [])}
    seeds = sorted(set(a) & set(b))
    if not seeds or any(a[s].get("eval_rows") != b[s].get("eval_rows") for s in seeds):
        return pd.DataFrame()
    rows = []
    for d, (label, _) in DIRECTIONS.items():
        ra = np.stack([np.asarray(a[s]["ranks_sampled"][d]) for s in seeds])
        rb = np.stack([np.asarray(b[s]["ranks_sampled"][d]) for s in seeds])
        row = {"direction": label, "seeds": len(seeds), "queries": ra.shape[1]}
        for k in KS:
            m, lo, hi = bootstrap_ci(100.0 * ((ra <= k).astype(float) - (rb <= k)))
            row[f"{first} − {second} R@{k}"] = f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def full_ranking(records: list[dict]) -> pd.DataFrame:
    """The text-image study's protocol (every test candidate) where the row computed it."""
    rows = []
    for model, recs in _records(records).items():
        have = [r for r in recs if r.get("ranks")]
        for d, (label, _) in DIRECTIONS.items():
            row = {"model": model, "direction": label, "seeds": len(have),
                   "candidates": have[0]["n_candidates"] if have else "—"}
            for k in KS:
                row[f"R@{k}"] = _cell(*_interval(have, "ranks", d, k)) if have else "—"
            row["MedR %"] = f"{np.mean([r['means'][f'MedR%_{d}'] for r in have]):.1f}" if have else "—"
            if not have:
                row["note"] = (recs[0].get("cost") or {}).get("full_ranking", "not computed") if recs else ""
            rows.append(row)
    return pd.DataFrame(rows)


def compact(df: pd.DataFrame, columns: tuple[str, ...] = ("seeds", "queries", "candidates")) -> tuple[pd.DataFrame, str]:
    """``df`` without those of ``columns`` that hold one value in every row, and a phrase that
    states them ("3 seeds, 20 queries, 101 candidates"): the chapter's tables then fit an 800 px
    column instead of scrolling their numbers out of sight."""
    same = [c for c in columns if c in df.columns and len(df) and df[c].astype(str).nunique() == 1]
    singular = {"seeds": "seed", "queries": "query", "candidates": "candidate"}
    phrase = ", ".join(f"{df[c].iloc[0]} {singular.get(c, c) if str(df[c].iloc[0]) == '1' else c}" for c in same)
    return df.drop(columns=same), phrase


def full_ranking_md(records: list[dict]) -> str:
    """The full-ranking table of the rows that computed it, then one line per row that did not
    (its reason, e.g. the cross-encoder's pair budget) rather than a row of dashes."""
    df = full_ranking(records)
    if df.empty:
        return ""
    skipped = df[df["note"].astype(str).str.len() > 0] if "note" in df.columns else df.iloc[:0]
    done = df.drop(index=skipped.index).drop(columns=[c for c in ("note",) if c in df.columns])
    table, phrase = compact(done, ("seeds", "candidates"))
    lines = ([f"Every row: {phrase}.", md_table(table)] if phrase else [md_table(table)]) if len(done) else []
    if len(skipped):  # (no "note" column at all when every model computed it)
        lines += [f"Not computed for {m}: {str(note).removeprefix('skipped: ')}."
                  for m, note in dict(zip(skipped["model"], skipped["note"])).items()]
    return "\n\n".join(x for x in lines if x)


def per_category(records: list[dict], direction: str = "t2i", k: int = 10) -> pd.DataFrame:
    """RQ2.1: sampled Recall@k per root category of the query, one column per model (mean over seeds)."""
    cols, counts = {}, {}
    for model, recs in _records(records).items():
        per: dict[str, list[float]] = {}
        for r in recs:
            for c, v in ((r.get("per_root_category") or {}).get(direction) or {}).items():
                per.setdefault(c, []).append(v[f"R@{k}"])
                counts[c] = v["queries"]
        cols[f"{model} R@{k}"] = {c: round(float(np.mean(v)), 1) for c, v in per.items()}
    if not cols:
        return pd.DataFrame()
    df = pd.DataFrame(cols)
    df.insert(0, "queries", pd.Series(counts))
    return df.sort_index().rename_axis("root category").reset_index()


def cost_table(records: list[dict]) -> pd.DataFrame:
    """Per row: pairs the model scored per query, all pairs scored, ms per pair, run time."""
    rows = []
    for model, recs in _records(records).items():
        for r in recs:
            c = r.get("cost") or {}
            ppq = c.get("pairs_per_query") or {}
            rows.append({"model": model, "seed": r["seed"],
                         "pairs per query (sampled)": ppq.get("sampled") or "0 (dual encoder)",
                         "pairs per query (full)": ppq.get("full") if ppq.get("full") is not None else "skipped",
                         "pairs scored": c.get("pairs_scored", 0), "ms per pair": c.get("ms_per_pair", "—"),
                         "run time (s)": r.get("wall_time_s"),
                         "of which features (s)": (r.get("timing") or {}).get("features_s")})
    return pd.DataFrame(rows)


def _compact_table(df: pd.DataFrame) -> list[str]:
    table, phrase = compact(df)
    return [f"Every row: {phrase}.", md_table(table)] if phrase else [md_table(table)]


def chapter_md(records: list[dict], command: str) -> str:
    """The chapter's generated Markdown; ``command`` is what produces the rows when there is none."""
    if not _records(records):
        return f"No fine-grained row has been run into this book yet: `{command}` runs the study and builds the book."
    pub = published_finegrained()
    parts = [demonstration_md(records),
             "## Both models side by side (RQ2.3)",
             f"Recall@K (percent) of the papers' protocol: {pub['protocol'].strip()} Ours: mean over seeds and "
             "queries with a 95 % bootstrap interval (queries and seeds resampled).",
             *_compact_table(side_by_side(records)),
             chance_md(records),
             "The difference on the same queries and negatives (points; 95 % bootstrap interval over queries and "
             "seeds):",
             *_compact_table(paired_difference(records)),
             "Sources: " + "; ".join(f"{m}: {pub[k]['source']}" for m, k in PUBLISHED_KEY.items()) + ". "
             + " ".join(pub[k]["numbers_source"].strip() for k in PUBLISHED_KEY.values()),
             "## Full ranking (the text-image study's protocol)",
             full_ranking_md(records),
             chance_md(records, full=True),
             "## Per root category (RQ2.1)",
             "Recall@10 of the sampled protocol, text → image, by the query product's root category "
             "(the e-commerce categories other than fashion).",
             md_table(per_category(records)),
             "## Cost",
             "A cross-encoder scores each (query, candidate) pair with a forward pass: the sampled protocol costs "
             "1 + negatives pairs per query and direction, the full ranking N per query (N * N for both directions "
             "at once); MLF embeds each text and image once.",
             md_table(cost_table(records))]
    return "\n\n".join(p for p in parts if p) + "\n"


__all__ = ["chapter_md", "chance_md", "compact", "full_ranking_md", "side_by_side", "paired_difference", "full_ranking", "per_category", "cost_table", "demonstration_md",
           "published_finegrained"]
