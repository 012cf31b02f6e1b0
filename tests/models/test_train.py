import torch

from cti_repro.config import TrainConfig
from cti_repro.models.loss import build_loss
from cti_repro.models.heads import CtIModel
from cti_repro.models.train import PairTensors, train


def _toy(n: int, seed: int) -> PairTensors:
    """Pairs whose image feature is a noisy copy of the category feature (learnable)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 6, (n,), generator=g)
    protos = torch.randn(6, 16, generator=torch.Generator().manual_seed(99))
    cat = protos[labels]
    img = protos[labels] @ torch.randn(16, 12, generator=torch.Generator().manual_seed(7)) + 0.3 * torch.randn(n, 12, generator=g)
    return PairTensors(category=cat, product={"image": img}, labels=labels)


def _run(seed: int, epochs: int = 4, amp: str = "off"):
    torch.manual_seed(seed)
    model = CtIModel(("image",), {"image": 12}, category_dim=16, d=8)
    cfg = TrainConfig(epochs=epochs, amp=amp)
    res = train(model, _toy(96, 0), _toy(32, 1), build_loss("infonce", tau=0.5), cfg, batch_size=16, seed=seed,
                progress=False)
    return model, res


def test_same_seed_gives_identical_weights_and_history():
    m1, r1 = _run(3)
    m2, r2 = _run(3)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert [h["val_loss"] for h in r1.history] == [h["val_loss"] for h in r2.history]
    m3, _ = _run(4)
    assert not torch.equal(m1.state_dict()["product_head.projection.weight"], m3.state_dict()["product_head.projection.weight"])


def test_history_schedule_and_best_checkpoint():
    model, res = _run(0, epochs=6)
    assert [h["epoch"] for h in res.history] == list(range(1, 7))
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    best = min(res.history, key=lambda h: h["val_loss"])
    assert res.best_epoch == best["epoch"] and res.best_val_loss == best["val_loss"]
    # 96 pairs / 16 per batch = 6 steps per epoch
    assert res.steps == 36
    # lr never increases under ReduceLROnPlateau
    lrs = [h["lr"] for h in res.history]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_model_holds_best_weights_on_return():
    from cti_repro.models.train import evaluate_loss

    model, res = _run(0, epochs=5)
    val = evaluate_loss(model, _toy(32, 1), build_loss("infonce", tau=0.5), 16, "cpu", False)
    assert abs(val - res.best_val_loss) < 1e-6


def test_bf16_autocast_path_runs_on_cpu():
    # The CUDA path uses bf16 autocast; `amp: on` forces the same code path on CPU.
    _, res = _run(0, epochs=2, amp="on")
    assert res.amp is True
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in res.history)


def test_plateau_factor_applied():
    torch.manual_seed(0)
    model = CtIModel(("image",), {"image": 12}, category_dim=16, d=8)
    # A tiny lr (above the scheduler's eps of 1e-8) leaves the validation loss flat, so with patience 0 every epoch after the first
    # is a plateau and the lr halves each time.
    cfg = TrainConfig(epochs=5, lr=1e-6, plateau_patience=0, plateau_factor=0.5)
    res = train(model, _toy(64, 0), _toy(32, 1), build_loss("infonce"), cfg, batch_size=16, progress=False)
    lrs = [h["lr"] for h in res.history]
    assert lrs[0] == 1e-6
    assert all(abs(b / a - 0.5) < 1e-9 for a, b in zip(lrs[1:], lrs[2:]))
    assert lrs[-1] < lrs[0]


def test_nan_features_stop_training_instead_of_keeping_the_untrained_weights():
    import pytest

    from cti_repro.models.train import NonFiniteLossError

    torch.manual_seed(0)
    model = CtIModel(("image",), {"image": 12}, category_dim=16, d=8)
    data = _toy(96, 0)
    data.product["image"][5] = float("nan")  # one NaN row in a (broken) feature cache
    with pytest.raises(NonFiniteLossError, match="epoch 1: .*not finite"):
        train(model, data, _toy(32, 1), build_loss("infonce", tau=0.5), TrainConfig(epochs=3, amp="off"),
              batch_size=16, progress=False)


def test_loop_keeps_the_best_epoch_not_the_last(monkeypatch):
    """Scripted validation losses (best at epoch 2 of 4): the returned weights are epoch 2's."""
    import cti_repro.models.train as tr

    losses, snapshots = iter([2.0, 1.0, 3.0, 4.0]), []

    def fake_val(model, *args, **kwargs):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(losses)

    monkeypatch.setattr(tr, "evaluate_loss", fake_val)
    model, res = _run(0, epochs=4)
    assert res.best_epoch == 2 and res.best_val_loss == 1.0
    final = model.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[3][k]) for k in final)  # the last epoch differs


def test_validation_criterion_responds_to_the_model_on_root_sorted_pairs():
    """Pairs sorted by root (as the XMarket importer writes them), 8 roots x 8 pairs, every pair of a
    root with the same category and product features: catalogue-order batches of 8 hold one root,
    where the loss is ln 8 whatever the model; the shuffled batches tell two models apart."""
    import math

    from cti_repro.models.train import evaluate_loss

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(8).repeat_interleave(8)
    cat, img = torch.randn(8, 16, generator=g)[labels], torch.randn(8, 12, generator=g)[labels]
    val = PairTensors(category=cat, product={"image": img}, labels=labels)
    loss = build_loss("infonce", tau=1.0)
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        models.append(CtIModel(("image",), {"image": 12}, category_dim=16, d=8))
    ordered = [evaluate_loss(m, val, loss, 8, "cpu", False, shuffle_seed=None) for m in models]
    assert ordered == [math.log(8)] * 2 or all(abs(x - math.log(8)) < 1e-6 for x in ordered)
    shuffled = [evaluate_loss(m, val, loss, 8, "cpu", False) for m in models]
    assert abs(shuffled[0] - shuffled[1]) > 1e-3 and all(abs(x - math.log(8)) > 1e-3 for x in shuffled)
    assert evaluate_loss(models[0], val, loss, 8, "cpu", False) == shuffled[0]  # the same batches every call


def test_adamw_decays_weight_matrices_only_as_open_clip_does():
    """open_clip_train's rule: no weight decay on gains, biases, norms and the learnable logit_scale.

    A loss that reads ``logit_scale`` with a zero gradient: AdamW's decoupled decay would still
    shrink it by (1 - lr * wd) each step (towards tau = 1) if it were in the decayed group.
    """
    from cti_repro.models.train import decay_groups

    torch.manual_seed(0)
    model = CtIModel(("image",), {"image": 12}, category_dim=16, d=8, head="batchnorm", learn_tau=True, tau=0.05)
    groups = decay_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    skip, decay = ({names[id(p)] for p in g["params"]} for g in groups)
    assert [g["weight_decay"] for g in groups] == [0.0, 0.1]
    assert "logit_scale" in skip and all(n.endswith(".weight") and "net.1" not in n for n in decay)
    assert {"category_head.net.0.bias", "category_head.net.1.weight", "category_head.net.1.bias"} <= skip
    assert {"category_head.net.0.weight", "category_head.net.3.weight"} <= decay
    assert skip | decay == set(names.values()) and not skip & decay

    start = float(model.logit_scale)
    base = build_loss("infonce", tau=0.5)
    train(model, _toy(96, 0), _toy(32, 1), lambda c, p, y: base(c, p, y) + 0.0 * model.logit_scale,
          TrainConfig(epochs=2, weight_decay=0.5), batch_size=16, seed=0, progress=False)
    assert float(model.logit_scale) == start  # a zero gradient and no decay: untouched
