"""MLF (Goei, Hendriksen and de Rijke, SIGIR eCom 2021): multi-level CNN image features and a
recurrent text encoder in one joint space.

::

    image:  ResNet stages 1..4, each globally averaged (cached, frozen; cnn.py), each level
            L2-normalised, concatenated, Linear -> dim                       (multi-level features)
    text:   word embeddings (vocabulary of the training texts) -> bidirectional GRU, mean over the
            words' states -> Linear -> dim                                   (the CNN-RNN text side)
    both L2-normalised; cosine similarity; loss: bidirectional hinge (loss.py)

The levels are normalised before they are joined so a 2048-wide last stage does not drown a
256-wide first one (the point of the multi-level features is that the low levels count).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cti_repro.models.finegrained.loss import bidirectional_hinge_loss

PAD, UNK = 0, 1


class Vocabulary:
    """Word -> id over the training texts (ids 0 and 1: padding and unknown)."""

    def __init__(self, texts: list[str], min_count: int = 1) -> None:
        from cti_repro.models.xmodal.text import tokenize

        self.tokenize = tokenize
        counts = Counter(w for t in texts for w in tokenize(t))
        self.words = ["<pad>", "<unk>"] + sorted(w for w, c in counts.items() if c >= min_count)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str], max_words: int) -> np.ndarray:
        """int64 [n, max_words] word ids, padded with 0; a text without words keeps one UNK."""
        out = np.zeros((len(texts), max_words), np.int64)
        for r, t in enumerate(texts):
            ids = [self.index.get(w, UNK) for w in self.tokenize(t)][:max_words] or [UNK]
            out[r, : len(ids)] = ids
        return out


class MultiLevelImage(nn.Module):
    """Per-level L2 normalisation, concatenation, one linear map to the joint space."""

    def __init__(self, level_dims: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.level_dims = tuple(int(d) for d in level_dims)
        self.proj = nn.Linear(sum(self.level_dims), dim)

    def forward(self, x: Tensor) -> Tensor:
        parts = torch.split(x, self.level_dims, dim=1)
        return self.proj(torch.cat([F.normalize(p, dim=1) for p in parts], dim=1))


class GRUText(nn.Module):
    """Word embeddings -> bidirectional GRU -> mean over the non-padding positions -> Linear."""

    def __init__(self, vocab: int, word_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, word_dim, padding_idx=PAD)
        self.gru = nn.GRU(word_dim, hidden // 2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != PAD).float()
        h, _ = self.gru(self.emb(ids))
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        return self.proj(pooled)


class MLF(nn.Module):
    """The joint embedding: ``embed_image`` [B, sum C] -> [B, dim], ``embed_text`` ids [B, T] -> [B, dim], unit rows."""

    def __init__(self, level_dims: tuple[int, ...], vocab: int, word_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.image = MultiLevelImage(level_dims, dim)
        self.text = GRUText(vocab, word_dim, hidden, dim)
        self.dim = dim

    def embed_image(self, x: Tensor) -> Tensor:
        return F.normalize(self.image(x.float()), dim=-1)

    def embed_text(self, ids: Tensor) -> Tensor:
        return F.normalize(self.text(ids), dim=-1)

    def forward(self, x: Tensor, ids: Tensor) -> Tensor:
        """The [B, B] cosine matrix, images (rows) x texts (columns)."""
        return self.embed_image(x) @ self.embed_text(ids).T

    def describe(self) -> dict[str, Any]:
        return {"dim": self.dim, "levels": list(self.image.level_dims), "vocabulary": self.text.emb.num_embeddings,
                "params": sum(p.numel() for p in self.parameters())}


def train_mlf(net: MLF, images: np.ndarray, ids: np.ndarray, train_rows: np.ndarray, epochs: int, lr: float,
              batch_size: int, margin: float, hardest: bool, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Adam on :func:`bidirectional_hinge_loss` over shuffled in-batch negatives; the last epoch is kept.

    Args:
        net: the model (initialise under ``torch.manual_seed`` before).
        images: [N, sum C] multi-level features of every catalogue row; ``ids``: [N, T] word ids.
        train_rows: catalogue rows trained on.

    Returns:
        ``{"history": [{epoch, train_loss, seconds}], "steps", "seconds", "device"}``.
    """
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history, steps, t_start = [], 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0, total, seen = time.perf_counter(), 0.0, 0
        order = np.asarray(train_rows)[rng.permutation(len(train_rows))]
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            if len(rows) < 2:
                continue  # no in-batch negative
            x = torch.as_tensor(np.asarray(images[rows]), dtype=torch.float32, device=device)
            t = torch.as_tensor(ids[rows], device=device)
            loss = bidirectional_hinge_loss(net(x, t), margin, hardest)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            total, seen = total + float(loss.detach()) * len(rows), seen + len(rows)
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "seconds": round(time.perf_counter() - t0, 3)})
    net.eval()
    return {"history": history, "steps": steps, "seconds": round(time.perf_counter() - t_start, 3), "device": device}


@torch.no_grad()
def embed(net: MLF, images: np.ndarray, ids: np.ndarray, rows: np.ndarray, device: str = "cpu",
          batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(text embeddings, image embeddings) of ``rows``, float32 [len(rows), dim] each."""
    t, i = [], []
    for s in range(0, len(rows), batch):
        r = rows[s : s + batch]
        t.append(net.embed_text(torch.as_tensor(ids[r], device=device)).cpu())
        i.append(net.embed_image(torch.as_tensor(np.asarray(images[r]), dtype=torch.float32, device=device)).cpu())
    return torch.cat(t).numpy(), torch.cat(i).numpy()


__all__ = ["Vocabulary", "MultiLevelImage", "GRUText", "MLF", "train_mlf", "embed"]
