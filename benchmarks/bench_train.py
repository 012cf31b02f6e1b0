"""Training throughput of the projection heads on cached (random) features, at the paper's scale.

One pair per product and setting: 38,921 products -> 31,137 training and 3,892 validation pairs.
Feature sizes: image 512 (ViT-B-32), title / attributes / category 768 (MPNet), so CLIP-ITA's
product head sees 2,048 inputs. Batch size per setting as in the paper's set-up (``all`` and
``most_specific``: 128; ``most_general``: 8). The loop is :func:`cti_repro.models.train.train` itself.

``steps/s`` comes from the second of two epochs over a slice of the training pairs (the first one
warms up); the validation pass is timed separately on all 3,892 pairs. ``30 epochs`` =
``30 x (steps per epoch / steps/s + validation)`` (computed, marked); ``--full`` also runs one real
epoch over all pairs per setting and reports it next to the estimate.
"""

from __future__ import annotations

import math

import torch

import common as C
from cti_repro.config import TrainConfig
from cti_repro.models.loss import build_loss
from cti_repro.models.heads import MODALITIES, CtIModel
from cti_repro.models.train import PairTensors, evaluate_loss, train

DIMS = {"image": 512, "title": 768, "attributes": 768}
CATEGORY_DIM = 768
SETTINGS = {"all": 128, "most_general": 8, "most_specific": 128}


def pairs(n: int, mods: tuple[str, ...], seed: int) -> PairTensors:
    g = torch.Generator().manual_seed(seed)
    return PairTensors(category=torch.randn(n, CATEGORY_DIM, generator=g),
                       product={m: torch.randn(n, DIMS[m], generator=g) for m in mods},
                       labels=torch.randint(0, 500, (n,), generator=g))


def bench(model_name: str, batch: int, n_train: int, n_val: int, steps: int, full_epoch: bool) -> dict:
    mods = MODALITIES[model_name]
    torch.manual_seed(0)
    model = CtIModel(mods, DIMS, CATEGORY_DIM)
    loss = build_loss("infonce", tau=1.0)
    cfg = TrainConfig(epochs=2)
    tr = pairs(min(n_train, steps * batch), mods, 1)
    res = train(model, tr, pairs(2 * batch, mods, 2), loss, cfg, batch, progress=False)
    val = pairs(n_val, mods, 3)
    t_val = C.interleaved({"val": lambda: evaluate_loss(model, val, loss, batch, "cpu", False)}, 2)["val"]["median_s"]
    small_val = C.timed(lambda: evaluate_loss(model, pairs(2 * batch, mods, 2), loss, batch, "cpu", False))[0]
    steps_per_epoch_sub = res.steps // 2
    step_s = max(res.history[1]["seconds"] - small_val, 1e-9) / steps_per_epoch_sub
    steps_per_epoch = math.ceil(n_train / batch) - (1 if n_train % batch == 1 else 0)
    epoch_est = steps_per_epoch * step_s + t_val
    out = {"model": model_name, "input_dim": sum(DIMS[m] for m in mods), "batch": batch,
           "steps_per_s": 1.0 / step_s, "pairs_per_s": batch / step_s, "steps_per_epoch": steps_per_epoch,
           "val_s": t_val, "epoch_estimate_s": epoch_est, "epochs30_estimate_s": 30 * epoch_est,
           "measured_steps": steps_per_epoch_sub, "params": sum(p.numel() for p in model.parameters())}
    if full_epoch:
        torch.manual_seed(0)
        m2 = CtIModel(mods, DIMS, CATEGORY_DIM)
        r2 = train(m2, pairs(n_train, mods, 4), val, loss, TrainConfig(epochs=1), batch, progress=False)
        out["epoch_measured_s"] = r2.history[0]["seconds"]
    return out


def run(quick: bool = True) -> dict:
    n = C.PAPER["products"]
    n_train, n_val = round(0.8 * n), round(0.1 * n)
    out = {"machine": C.machine(), "mode": "quick" if quick else "full", "train_pairs": n_train, "val_pairs": n_val,
           "runs": []}
    for model_name in MODALITIES:
        for batch in sorted(set(SETTINGS.values())):
            steps = (200 if batch <= 8 else 40) if quick else (1500 if batch <= 8 else 243)
            out["runs"].append(bench(model_name, batch, n_train, n_val, steps, full_epoch=not quick))
    out["settings"] = [{"setting": s, **r} for s, b in SETTINGS.items() for r in out["runs"] if r["batch"] == b]
    print(f"\n== training on cached features: {n_train} train / {n_val} val pairs, 30 epochs (computed) ==")
    rows = [[r["setting"], r["model"], r["input_dim"], r["batch"], f"{r['steps_per_s']:.0f}",
             f"{r['pairs_per_s']:.0f}", C.fmt_s(r["epoch_estimate_s"]), C.fmt_s(r.get("epoch_measured_s")),
             C.fmt_s(r["epochs30_estimate_s"])] for r in out["settings"]]
    C.print_table(rows, ["setting", "model", "input", "batch", "steps/s", "pairs/s", "epoch (est.)", "epoch (measured)",
                         "30 epochs (est.)"])
    out["machine_end"] = C.machine()
    C.write_json("train", out)
    return out


if __name__ == "__main__":
    C.cli_main(run, __doc__)
