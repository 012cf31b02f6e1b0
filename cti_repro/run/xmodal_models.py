"""The six models of the text <-> image study: fit on the training products, embed the test products.

Each ``fit_embed_*`` function takes the task (:class:`cti_repro.data.xmodal_pairs.XModalData`),
the cached frozen features and the config, and returns an :class:`Embedded`: text and image
embeddings of the test products (row i of both is test product i), plus what the result records
about the model (``model_info``, ``training``, auxiliary accuracies).

=====================  ===========================================================================
model                  text side / image side
=====================  ===========================================================================
KCCA                   mean word2vec vector / frozen image features, Nystroem kernel maps + CCA
TwoBranch-BoW          bag of words -> MLP / image MLP (or AlexNet), contrastive + 2 aux heads
TwoBranch-w2v          mean word2vec -> MLP / as above
TwoBranch-w2v-noaux    as TwoBranch-w2v without the auxiliary heads
CLIP                   open_clip text tower on the title / open_clip image features (zero-shot)
CLIP-heads             both CLIP features through the public code's BatchNorm heads, soft-target loss
=====================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cti_repro.config import StudyConfig
from cti_repro.data.catalogue import Catalogue
from cti_repro.data.xmodal_pairs import XModalData


@dataclass
class Embedded:
    """Test-set embeddings of one model and what the result records about it."""

    text: np.ndarray
    image: np.ndarray
    model_info: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    aux_accuracy: dict[str, float] | None = None


def _texts(data: XModalData, rows: np.ndarray) -> list[str]:
    return [data.texts[i] for i in rows]


def _word2vec(cfg: StudyConfig, data: XModalData, seed: int):
    from cti_repro.models.xmodal_text import Word2VecText

    w = cfg.xmodal.word2vec
    return Word2VecText(w.dim, w.epochs, w.window, w.min_count, str(cfg.path(w.path)) if w.path else "", seed).fit(
        _texts(data, data.split["train"]))


def _all_rows(data: XModalData) -> np.ndarray:
    return np.sort(np.concatenate([data.split[s] for s in ("train", "val", "test")]))


def fit_embed_kcca(cfg: StudyConfig, data: XModalData, image: np.ndarray, seed: int, device: str) -> Embedded:
    """KCCA between mean word2vec vectors and the frozen image features (``xmodal.kcca``)."""
    from cti_repro.models.kcca import KCCA

    k = cfg.xmodal.kcca
    w2v = _word2vec(cfg, data, seed)
    tr, te = data.split["train"], data.test
    model = KCCA(k.n_components, k.nystroem_components, k.kernel, k.gamma, k.max_descriptors, k.max_iter, k.memory_gb,
                 seed).fit(np.asarray(image[tr]), w2v.transform(_texts(data, tr)))
    return Embedded(model.transform_text(w2v.transform(_texts(data, te))), model.transform_image(np.asarray(image[te])),
                    {"model": "KCCA", **model.info, "text_features": w2v.describe(), "image_features": "frozen"})


def fit_embed_two_branch(
    cfg: StudyConfig, data: XModalData, image: np.ndarray, labels: np.ndarray, n_classes: int, text_kind: str,
    aux: bool, seed: int, device: str, progress: bool, catalogue: Catalogue,
) -> tuple[Embedded, Any]:
    """Rubio et al.'s network with a word2vec (``text_kind="w2v"``) or bag-of-words text branch."""
    import torch

    from cti_repro.models.xmodal import (
        AlexNetBranch, MLPBranch, TwoBranchNet, dense_input, embed_rows, image_file_input, train_two_branch,
    )
    from cti_repro.models.xmodal_text import BagOfWordsText

    x = cfg.xmodal
    rows = _all_rows(data)
    if text_kind == "w2v":
        featurizer = _word2vec(cfg, data, seed)
    else:
        featurizer = BagOfWordsText(x.bow.kind, x.bow.max_features).fit(_texts(data, data.split["train"]))
    # Text features of every kept product, indexed by catalogue row (rows of dropped products stay empty).
    feats = featurizer.transform(data.texts)
    text_input = dense_input(feats, device)
    torch.manual_seed(seed)
    if x.image_branch == "alexnet":
        paths = [catalogue.image_path(i) for i in range(len(catalogue))]
        image_input, image_branch = image_file_input(paths, x.image_size, device), AlexNetBranch(x.dim)
    else:
        image_input = dense_input(image, device)
        image_branch = MLPBranch(int(image.shape[1]), x.dim, x.hidden, x.dropout)
    net = TwoBranchNet(image_branch, MLPBranch(int(featurizer.dim), x.dim, x.hidden, x.dropout), x.dim,
                       n_classes if aux else 0)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    threads = torch.get_num_threads()
    if device == "cpu" and x.image_branch == "features":
        torch.set_num_threads(1)  # small MLPs: threads only add overhead, and one thread is reproducible
    try:
        training = train_two_branch(net, image_input, text_input, y, data.split["train"], data.split["val"], x.epochs,
                                    x.lr, x.weight_decay, x.batch_size, x.margin, x.aux_weight if aux else 0.0, seed,
                                    device, progress)
        te = data.test
        with torch.no_grad():
            t_emb = embed_rows(net.embed_text, text_input, te)
            i_emb = embed_rows(net.embed_image, image_input, te)
            acc = None
            if aux:
                from cti_repro.evaluation.xmodal_metrics import accuracy

                li = net.image_aux(torch.as_tensor(i_emb, device=device)).cpu().numpy()
                lt = net.text_aux(torch.as_tensor(t_emb, device=device)).cpu().numpy()
                acc = {"image": accuracy(li, labels[te]), "text": accuracy(lt, labels[te])}
    finally:
        torch.set_num_threads(threads)
    info = {"model": f"two-branch ({text_kind})", **net.describe(), "text_features": featurizer.describe(),
            "image_input": x.image_branch, "margin": x.margin, "aux_weight": x.aux_weight if aux else 0.0,
            "aux_level": x.aux_level, "kept_rows": int(len(rows))}
    return Embedded(t_emb, i_emb, info, training, acc), net


def clip_title_features(cfg: StudyConfig, catalogue: Catalogue, device: str) -> tuple[np.ndarray, dict]:
    """open_clip text-tower embeddings of every title: the feature cache's ``clip_title`` part
    (keyed like the image part: weights on disk, activation, preprocessing, precision).

    ``cti-repro reproduce`` computes it once before the text-image rows, so the zero-shot CLIP
    and CLIP-heads rows running at once do not both encode every title.

    Returns:
        (features [N, d] float32, the image encoder's identity).
    """
    from cti_repro.features import load_features

    fs = load_features(cfg, catalogue, ("clip_title",), device)
    return fs["clip_title"], fs.identities["image"]


def embed_clip(data: XModalData, image: np.ndarray, clip_text: np.ndarray) -> Embedded:
    """Zero-shot CLIP: the title's text-tower embedding against the product image's, cosine."""
    te = data.test
    return Embedded(np.asarray(clip_text[te]), np.asarray(image[te]),
                    {"model": "CLIP zero-shot", "query": "open_clip text tower (title)", "candidate": "image",
                     "similarity": "cosine"})


def fit_embed_clip_heads(
    cfg: StudyConfig, data: XModalData, image: np.ndarray, clip_text: np.ndarray, labels: np.ndarray, seed: int,
    device: str, progress: bool,
) -> tuple[Embedded, Any]:
    """CLIP features with trained heads: the public code's BatchNorm heads and soft-target loss.

    The CtI model's two heads (:class:`cti_repro.models.heads.CtIModel` with ``head="batchnorm"``)
    and training loop (:func:`cti_repro.models.train.train`) with the title's CLIP text feature in
    the category head's place and the image feature as the product.
    """
    import torch

    from cti_repro.models.heads import CtIModel
    from cti_repro.models.loss import build_loss
    from cti_repro.models.train import PairTensors, train

    x = cfg.xmodal

    def pairs(rows: np.ndarray) -> PairTensors:
        return PairTensors(category=torch.as_tensor(np.asarray(clip_text[rows]), device=device),
                           product={"image": torch.as_tensor(np.asarray(image[rows]), device=device)},
                           labels=torch.as_tensor(labels[rows], dtype=torch.long, device=device))

    torch.manual_seed(seed)
    model = CtIModel(("image",), {"image": int(image.shape[1])}, category_dim=int(clip_text.shape[1]),
                     head="batchnorm", d=x.dim)
    tcfg = dataclasses.replace(cfg.train, epochs=x.epochs, lr=x.lr, weight_decay=x.weight_decay)
    result = train(model, pairs(data.split["train"]), pairs(data.split["val"]), build_loss("soft", tau=cfg.loss.tau),
                   tcfg, x.batch_size, seed=seed, device=device, progress=progress)
    te = data.test
    with torch.no_grad():
        t = model.encode_category(torch.as_tensor(np.asarray(clip_text[te]), device=device)).float().cpu().numpy()
        i = model.encode_product({"image": torch.as_tensor(np.asarray(image[te]), device=device)}).float().cpu().numpy()
    info = {"model": "CLIP + BatchNorm heads", **model.describe(), "loss": "soft", "tau": cfg.loss.tau}
    return Embedded(t, i, info, result.to_dict()), model


__all__ = ["Embedded", "fit_embed_kcca", "fit_embed_two_branch", "clip_title_features", "embed_clip",
           "fit_embed_clip_heads"]
