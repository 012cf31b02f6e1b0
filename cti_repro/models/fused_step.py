"""A lean step for a fused ``torch.optim.AdamW``: the same kernel, without the per-step Python.

``AdamW(fused=True).step()`` spends more time in Python (hooks, profiler records, grad-mode
switch, per group a walk over the parameters that rebuilds five lists and looks the state up)
than in the kernel when the model is as small as the projection heads at batch 8. Once every
parameter has its state, a step is only ``_foreach_add_(steps, 1)`` (once, over every group's
step counts) plus one ``_fused_adamw_`` call per parameter group, over tensors that never change
identity; :class:`LeanFusedAdamW` keeps those lists and makes exactly these calls, with each
group's hyper-parameters read at each step (``ReduceLROnPlateau`` changes ``lr``). The update is elementwise and per tensor,
so it is the optimiser's own arithmetic, bit for bit (``tests/models/test_train_reference.py``
trains with a plain ``opt.step()`` loop and compares every weight).

Anything else takes the optimiser's own ``step()``: the first step (it creates the state), a
parameter without a gradient (torch skips it, and its step count must not advance), an
optimiser that is not fused AdamW with plain settings, or a torch without the op.
"""

from __future__ import annotations

import torch
from torch import Tensor


class LeanFusedAdamW:
    """Steps ``opt`` (a ``torch.optim.AdamW`` built with ``fused=True``) cheaply; see the module doc.

    Usage per training step: ``loss.backward(); lean.step(); lean.zero_grad()``.
    The gradients are read from ``param.grad`` (so autograd's layout contract for ``.grad``
    holds, as with ``opt.step()``); :meth:`zero_grad` sets them to ``None``.
    """

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt
        self._params: list[list[Tensor]] = [list(g["params"]) for g in opt.param_groups]
        self._all: list[Tensor] = [p for ps in self._params for p in ps]
        self._lists: list[tuple[list[Tensor], list[Tensor], list[Tensor]]] | None = None  # per group: m, v, steps
        self._steps: list[Tensor] = []  # every group's step counts, in one list
        self.supported = (
            isinstance(opt, torch.optim.AdamW) and hasattr(torch, "_fused_adamw_")
            and all(g.get("fused") and g.get("decoupled_weight_decay", True) and not g["amsgrad"]
                    and not g["maximize"] and not g["capturable"] and not g["differentiable"]
                    and not isinstance(g["lr"], Tensor) for g in opt.param_groups)
            and getattr(opt, "grad_scale", None) is None and getattr(opt, "found_inf", None) is None
        )

    def _state_lists(self) -> list[tuple[list[Tensor], list[Tensor], list[Tensor]]] | None:
        """The state tensors per group, once every parameter has its state; else ``None``."""
        if self._lists is None:
            state = self.opt.state
            if any(len(state.get(p, ())) == 0 for p in self._all):
                return None
            self._lists = [([state[p]["exp_avg"] for p in ps], [state[p]["exp_avg_sq"] for p in ps],
                            [state[p]["step"] for p in ps]) for ps in self._params]
            self._steps = [t for _, _, steps in self._lists for t in steps]
        return self._lists

    def step(self) -> None:
        """One AdamW update from the current ``.grad`` of every parameter."""
        grads = [p.grad for p in self._all]
        lists = self._state_lists() if self.supported and all(g is not None for g in grads) else None
        if lists is None:
            self.opt.step()
            return
        at = 0
        with torch.no_grad():
            torch._foreach_add_(self._steps, 1)  # every group's step counts at once: the same +1 each
            for group, params, (exp_avgs, exp_avg_sqs, steps) in zip(self.opt.param_groups, self._params, lists):
                if not params:
                    continue
                beta1, beta2 = group["betas"]
                torch._fused_adamw_(params, grads[at : at + len(params)], exp_avgs, exp_avg_sqs, [], steps,
                                    amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                                    weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                                    grad_scale=None, found_inf=None)
                at += len(params)

    def zero_grad(self) -> None:
        """``opt.zero_grad(set_to_none=True)`` for the parameters this optimiser steps."""
        for p in self._all:
            p.grad = None
