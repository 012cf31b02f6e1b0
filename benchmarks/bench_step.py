"""Time per optimiser step of the heads' training loop: the plain loop against ``train()``.

The plain loop is the frozen reference of ``tests/models/test_train_reference.py`` (per step a
gather, an autocast block, ``zero_grad``, ``backward``, ``AdamW.step()``); ``train()`` is the
package's loop. Both train the same model on the same random features of the embedded profile's
sizes (2,400 training and 300 validation pairs; image 512, title / attributes / category 768),
one torch thread (as ``train()`` sets on CPU), interleaved A B, B A, ... so load spikes hit both;
each round asserts identical weights. The time per step includes the step's share of the
validation passes, as a row's training does.

    python benchmarks/bench_step.py                       # CLIP-I, batch 8, about 2,000 steps a run
    python benchmarks/bench_step.py --model CLIP-ITA --batch 128 --head batchnorm --loss soft
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import common as C  # noqa: F401  (puts the repository root on sys.path)
from cti_repro.config import TrainConfig
from cti_repro.models.heads import CtIModel
from cti_repro.models.loss import build_loss
from cti_repro.models.train import PairTensors, train
from cti_repro.study import MODALITIES
from tests.models.test_train_reference import _reference_loss, reference_train

DIMS = {"image": 512, "title": 768, "attributes": 768}
CATEGORY_DIM = 768


def _pairs(n: int, seed: int, mods: tuple[str, ...]) -> PairTensors:
    g = torch.Generator().manual_seed(seed)
    return PairTensors(category=torch.randn(n, CATEGORY_DIM, generator=g),
                       product={m: torch.randn(n, DIMS[m], generator=g) for m in mods},
                       labels=torch.randint(0, 30, (n,), generator=g))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="CLIP-I", choices=list(MODALITIES))
    ap.add_argument("--head", default="paper", choices=["paper", "batchnorm"])
    ap.add_argument("--loss", default="infonce", choices=["infonce", "soft"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=7, help="epochs per run (300 steps each at batch 8)")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args(argv)
    mods = MODALITIES[args.model]
    tr, va = _pairs(2400, 1, mods), _pairs(300, 2, mods)
    cfg = TrainConfig(epochs=args.epochs)

    def run(plain: bool) -> tuple[float, float, int, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = CtIModel(mods, DIMS, CATEGORY_DIM, head=args.head, bn_hidden=2048 if args.head == "batchnorm" else None)
        torch.manual_seed(1)
        c0, w0 = time.process_time(), time.perf_counter()
        if plain:
            history = reference_train(model, tr, va, _reference_loss(args.loss, model, False, 1.0), cfg, args.batch,
                                      seed=0, amp=False)
            steps = 0  # counted below from the batch sizes
        else:
            res = train(model, tr, va, build_loss(args.loss), cfg, args.batch, seed=0, progress=False)
            history, steps = res.history, res.steps
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        assert len(history) == args.epochs
        return cpu, wall, steps, model.state_dict()

    run(True), run(False)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "train": []}
    steps = 0
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        states = {}
        for plain in order:
            cpu, wall, n, state = run(plain)
            times["plain" if plain else "train"].append((cpu, wall))
            states[plain] = state
            steps = n or steps
        assert all(torch.equal(a, states[False][k]) for k, a in states[True].items()), "weights differ"
    print(f"{args.model} {args.head} {args.loss} batch {args.batch}: {steps} steps per run, {args.rounds} rounds, "
          f"1 thread, weights identical in every round")
    for name, ts in times.items():
        cpu, wall = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        print(f"  {name:6s} {1e3 * cpu / steps:7.3f} ms CPU per step   {1e3 * wall / steps:7.3f} ms wall per step")
    ratios = [p[0] / t[0] for p, t in zip(times["plain"], times["train"])]
    print(f"  speed-up (CPU time): {statistics.median(t[0] for t in times['plain']) / statistics.median(t[0] for t in times['train']):.3f}x "
          f"(per round: {', '.join(f'{x:.2f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
