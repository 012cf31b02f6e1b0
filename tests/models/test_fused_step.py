"""LeanFusedAdamW: the fused AdamW update of ``opt.step()``, bit for bit, and its fall-backs."""

from __future__ import annotations

import pytest
import torch

from cti_repro.models.fused_step import LeanFusedAdamW
from cti_repro.models.train import decay_groups


def _pair(fused: bool = True) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(13, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3, bias=False))
    return net, torch.optim.AdamW(decay_groups(net, 0.05), lr=3e-3, fused=fused)


def _grads(net: torch.nn.Module, step: int, skip: int | None) -> list[torch.Tensor | None]:
    g = torch.Generator().manual_seed(step)
    return [None if i == skip else torch.randn(p.shape, generator=g) for i, p in enumerate(net.parameters())]


@pytest.mark.parametrize("fused", [True, False])
def test_lean_step_equals_the_optimiser_step_with_missing_grads_and_lr_changes(fused: bool):
    ref, ref_opt = _pair(fused)
    net, opt = _pair(fused)
    lean = LeanFusedAdamW(opt)
    assert lean.supported is fused
    n_params = len(list(net.parameters()))
    for step in range(12):
        skip = step % n_params if step in (0, 5, 6) else None  # a parameter without a gradient: torch skips it
        if step == 8:
            for o in (ref_opt, opt):
                o.param_groups[1]["lr"] *= 0.5  # as ReduceLROnPlateau does between epochs
        ref_opt.zero_grad(set_to_none=True)
        lean.zero_grad()
        for p_ref, p, g in zip(ref.parameters(), net.parameters(), _grads(net, step, skip)):
            p_ref.grad = None if g is None else g.clone()
            p.grad = g
        ref_opt.step()
        lean.step()
        for p_ref, p in zip(ref.parameters(), net.parameters()):
            assert torch.equal(p_ref, p), step
            ref_state, state = ref_opt.state.get(p_ref, {}), opt.state.get(p, {})
            assert sorted(ref_state) == sorted(state), step  # no state yet for a parameter never stepped
            for key in ref_state:
                assert torch.equal(ref_state[key], state[key]), (step, key)
    lean.zero_grad()
    assert all(p.grad is None for p in net.parameters())
