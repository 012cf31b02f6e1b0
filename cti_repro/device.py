"""Where tensors go and in what precision: device choice and bf16 autocast, one rule for all stages.

The feature extractor and the training loop both take these, so "bf16 on CUDA by default" is
decided once.
"""

from __future__ import annotations

from typing import Any


class DeviceUnavailableError(RuntimeError):
    """``train.device: cuda`` was configured and no CUDA device is visible."""


def pick_device(preference: str = "auto") -> str:
    """The device to run on.

    Args:
        preference: ``auto`` (CUDA when visible, else CPU), ``cpu`` or ``cuda``.

    Returns:
        ``"cuda"`` or ``"cpu"``.

    Raises:
        RuntimeError: ``cuda`` was asked for and no CUDA device is visible.
    """
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("train.device is 'cuda' but no CUDA device is visible (use auto or cpu)")
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def device_type(device: str) -> str:
    """``"cuda"`` for ``cuda`` / ``cuda:N``, else ``"cpu"`` (what ``torch.autocast`` takes)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def amp_enabled(device: str, amp: bool | str | None) -> bool:
    """Whether bf16 autocast is on: ``None`` / ``"auto"`` = on CUDA only; ``True`` / ``"on"`` forces it
    (the CPU too: how the tests cover the path); ``False`` / ``"off"`` disables it."""
    if amp is None or amp == "auto":
        return device_type(device) == "cuda"
    return amp is True or amp == "on"


def amp_context(device: str, amp: bool | str | None = None) -> Any:
    """A ``torch.autocast`` context in bf16 on ``device``'s type, enabled by :func:`amp_enabled`.

    When it would switch autocast off while it is off already (the CPU default), a
    ``nullcontext``: entering ``torch.autocast(enabled=False)`` costs about a small kernel, which a
    most-general training step (a few tiny kernels) pays at every forward pass and loss.
    """
    import contextlib

    import torch

    kind, enabled = device_type(device), amp_enabled(device, amp)
    if not enabled and not torch.is_autocast_enabled(kind):
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


__all__ = ["pick_device", "device_type", "amp_enabled", "amp_context"]
