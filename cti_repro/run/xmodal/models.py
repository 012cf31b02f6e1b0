"""The models of the text <-> image study: fit on the training products, embed the test products.

Each ``fit_embed_*`` function takes the task (:class:`cti_repro.data.xmodal_pairs.XModalData`),
the frozen image features and the config, and returns an :class:`Embedded`: text and image
embeddings of the test products (row i of both is test product i), plus what the result records
about the model (``model_info``, ``training``, auxiliary accuracies). :data:`SPECS` says what each
model name is; :func:`what_ran` turns a spec and what actually loaded into the record's ``ran``
block, from which the chapter's table and text are generated.

=======================  ====================================================================
model                    text side / image side (Rubio's image branch: ``xmodal.image_branch``)
=======================  ====================================================================
KCCA                     mean word2vec / Rubio's image features (AlexNet fc7), exact kernel CCA
TwoBranch-BoW            bag of words (counts) -> MLP / Rubio's image branch, contrastive + aux heads
TwoBranch-w2v            mean word2vec -> MLP / as above
TwoBranch-w2v-noaux      as TwoBranch-w2v without the auxiliary heads
TwoBranch-w2v-CLIPfeat   as TwoBranch-w2v, image side an MLP over CLIP image features (our variant)
CLIP                     open_clip text tower on the title / open_clip image features (zero-shot)
CLIP-heads               both CLIP features through the public code's BatchNorm heads (hidden width
                         model.bn_hidden, output xmodal.dim), soft-target loss
KCCA-Nystroem            as KCCA, approximate: Nystroem maps + linear CCA (variant, by command)
TwoBranch-TFIDF          as TwoBranch-BoW with TF-IDF weights (variant, by command)
=======================  ====================================================================
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class XModalSpec:
    """What a model name means.

    Attributes:
        kind: ``kcca``, ``two_branch``, ``clip`` (zero-shot) or ``clip_heads``.
        text: ``w2v``, ``bow`` (counts), ``tfidf`` or ``clip_title``.
        image: ``rubio`` (``xmodal.image_branch``) or ``clip`` (the CLIP image features).
        aux: the auxiliary category heads (two-branch models).
        exact: exact KCCA (False: the Nystroem approximation).
        rubio: one of Rubio et al.'s models (False: our variant).
    """

    kind: str
    text: str
    image: str = "rubio"
    aux: bool = True
    exact: bool = True
    rubio: bool = True


SPECS: dict[str, XModalSpec] = {
    "KCCA": XModalSpec("kcca", "w2v", aux=False),
    "TwoBranch-BoW": XModalSpec("two_branch", "bow"),
    "TwoBranch-w2v": XModalSpec("two_branch", "w2v"),
    "TwoBranch-w2v-noaux": XModalSpec("two_branch", "w2v", aux=False),
    "TwoBranch-w2v-CLIPfeat": XModalSpec("two_branch", "w2v", image="clip", rubio=False),
    "CLIP": XModalSpec("clip", "clip_title", image="clip", aux=False, rubio=False),
    "CLIP-heads": XModalSpec("clip_heads", "clip_title", image="clip", aux=False, rubio=False),
    "KCCA-Nystroem": XModalSpec("kcca", "w2v", aux=False, exact=False, rubio=False),
    "TwoBranch-TFIDF": XModalSpec("two_branch", "tfidf", rubio=False),
}


def image_branch(cfg: StudyConfig, spec: XModalSpec) -> str:
    """The image branch a model runs: ``xmodal.image_branch`` for Rubio's image side, else ``features`` (CLIP)."""
    return cfg.xmodal.image_branch if spec.image == "rubio" else "features"


def image_features(cfg: StudyConfig, catalogue: Catalogue, spec: XModalSpec, clip_image: np.ndarray,
                   clip_identity: dict, device: str) -> tuple[np.ndarray, dict]:
    """The frozen image features a model reads, with their encoder identity: AlexNet fc7 (the
    ``alexnet_fc7`` feature part) for Rubio's image side unless ``xmodal.image_branch`` is
    ``features``, else the CLIP image features. (The ``alexnet`` branch trains on decoded images;
    its KCCA row reads the frozen fc7.)"""
    branch = image_branch(cfg, spec)
    if branch == "features" or (branch == "alexnet" and spec.kind == "two_branch"):  # the CNN reads the image files
        return clip_image, clip_identity
    from cti_repro.features import load_features

    fs = load_features(cfg, catalogue, ("alexnet_fc7",), device)
    return fs["alexnet_fc7"], fs.identities["alexnet"]


_IMAGE_SIDE = {
    "alexnet_fc7": "AlexNet frozen up to fc7, its fc8 (4096 -> {dim}) trained",
    "alexnet": "AlexNet trained end to end, fc8 -> {dim}",
    "features": "MLP over CLIP {clip} image features (two-branch over CLIP features)",
}


def what_ran(model: str, cfg: StudyConfig, image_identity: dict, text_info: dict | None, kcca_info: dict | None,
             query_fields: list[str]) -> dict:
    """The record's ``ran`` block: whose model, the image branch and its weights, the text
    representation and where its vectors came from, exact or approximate KCCA, and the query.

    Args:
        model: a name of :data:`SPECS`.
        cfg: the config the row ran with.
        image_identity: the identity of the image weights that ran (AlexNet's or CLIP's).
        text_info: the text featuriser's ``describe()`` (None for the CLIP text tower).
        kcca_info: the KCCA fit's ``info`` (None for other models).
        query_fields: the text fields of the two-branch and KCCA queries.
    """
    spec = SPECS[model]
    branch = image_branch(cfg, spec)
    clip = cfg.encoders.image.model
    weights = str(image_identity.get("weights", "?"))
    pretrained = bool(image_identity.get("pretrained", False))
    if spec.kind == "kcca":
        image = f"kernel over {'AlexNet fc7' if branch != 'features' else f'CLIP {clip} image'} features"
    elif spec.kind == "clip":
        image = f"CLIP {clip} image tower (zero-shot)"
    elif spec.kind == "clip_heads":
        image = f"BatchNorm head over CLIP {clip} image features"
    else:
        image = _IMAGE_SIDE[branch].format(dim=cfg.xmodal.dim, clip=clip)
    alexnet = spec.kind in ("kcca", "two_branch") and branch != "features"
    px = (cfg.xmodal.image_size if alexnet else None)
    if spec.text == "clip_title":
        text = {"representation": f"CLIP {clip} text tower", "vectors": "the CLIP weights", "pretrained": pretrained}
    elif spec.text == "w2v":
        info = text_info or {}
        vectors = (f"pretrained file {Path(info.get('path', '')).name}" if info.get("pretrained")
                   else f"trained on this catalogue's training texts (gensim, {info.get('epochs')} epochs)")
        text = {"representation": f"word2vec, mean of {info.get('dim')}-d word vectors", "vectors": vectors,
                "pretrained": bool(info.get("pretrained"))}
    else:
        info = text_info or {}
        text = {"representation": f"bag of words ({'counts' if spec.text == 'bow' else 'TF-IDF'}, "
                                  f"{info.get('dim')}-word vocabulary)",
                "vectors": "the training texts' vocabulary", "pretrained": False}
    kcca = None
    if spec.kind == "kcca":
        k = kcca_info or {}
        kcca = ("exact" if spec.exact else
                f"approximate (Nystroem, {k.get('nystroem_components')} landmarks, iterative linear CCA)")
    return {"whose": "Rubio et al. (2017)" if spec.rubio else "our variant",
            "image": {"branch": image, "weights": weights, "pretrained": pretrained, "input_px": px},
            "text": text, "kcca": kcca,
            "query": "title" if spec.text == "clip_title" else " and ".join(query_fields)}


def _texts(data: XModalData, rows: np.ndarray) -> list[str]:
    return [data.texts[i] for i in rows]


def _word2vec(cfg: StudyConfig, data: XModalData, seed: int):
    from cti_repro.models.xmodal.text import Word2VecText

    w = cfg.xmodal.word2vec
    path = str(cfg.path(os.path.expanduser(w.path))) if w.path else ""
    return Word2VecText(w.dim, w.epochs, w.window, w.min_count, path, seed).fit(_texts(data, data.split["train"]))


def _all_rows(data: XModalData) -> np.ndarray:
    return np.sort(np.concatenate([data.split[s] for s in ("train", "val", "test")]))


def fit_embed_kcca(cfg: StudyConfig, data: XModalData, image: np.ndarray, seed: int, device: str,
                   exact: bool = True) -> Embedded:
    """KCCA between mean word2vec vectors and frozen image features (``xmodal.kcca``): exact
    (:class:`cti_repro.models.xmodal.kcca.ExactKCCA`) or the Nystroem approximation (``exact=False``)."""
    from cti_repro.models.xmodal.kcca import KCCA, ExactKCCA

    k = cfg.xmodal.kcca
    w2v = _word2vec(cfg, data, seed)
    tr, te = data.split["train"], data.test
    if exact:
        model = ExactKCCA(k.n_components, k.kernel, k.gamma, k.reg, k.max_descriptors, k.memory_gb, seed)
    else:
        model = KCCA(k.n_components, k.nystroem_components, k.kernel, k.gamma, k.max_descriptors, k.max_iter,
                     k.memory_gb, seed)
    model.fit(np.asarray(image[tr]), w2v.transform(_texts(data, tr)))
    return Embedded(model.transform_text(w2v.transform(_texts(data, te))), model.transform_image(np.asarray(image[te])),
                    {"model": "KCCA" if exact else "KCCA (Nystroem approximation)", **model.info,
                     "text_features": w2v.describe(), "image_features": "frozen"})


def fit_embed_two_branch(
    cfg: StudyConfig, data: XModalData, image: np.ndarray, labels: np.ndarray, n_classes: int, text_kind: str,
    aux: bool, seed: int, device: str, progress: bool, catalogue: Catalogue, branch: str = "features",
) -> tuple[Embedded, Any]:
    """Rubio et al.'s network with a word2vec (``text_kind="w2v"``) or bag-of-words (``bow``: counts,
    ``tfidf``) text branch; the image side is ``branch`` (:data:`cti_repro.config.xmodal.IMAGE_BRANCHES`)
    over ``image`` (fc7 or CLIP features; unused by ``alexnet``, which decodes the images)."""
    import torch

    from cti_repro.models.xmodal.two_branch import (
        AlexNetBranch, Fc8Branch, MLPBranch, TwoBranchNet, dense_input, embed_rows, image_file_input, train_two_branch,
    )
    from cti_repro.models.xmodal.text import BagOfWordsText

    x = cfg.xmodal
    rows = _all_rows(data)
    if text_kind == "w2v":
        featurizer = _word2vec(cfg, data, seed)
    else:
        kind = "tfidf" if text_kind == "tfidf" else x.bow.kind
        featurizer = BagOfWordsText(kind, x.bow.max_features).fit(_texts(data, data.split["train"]))
    # Text features of every kept product, indexed by catalogue row (rows of dropped products stay empty).
    feats = featurizer.transform(data.texts)
    text_input = dense_input(feats, device)
    torch.manual_seed(seed)
    if branch == "alexnet":
        paths = [catalogue.image_path(i) for i in range(len(catalogue))]
        image_input = image_file_input(paths, x.image_size, device)
        img_branch = AlexNetBranch(x.dim, x.alexnet.weights, x.alexnet.allow_random, seed)
        torch.manual_seed(seed)  # the text branch starts alike whatever the weights loading drew
    elif branch == "alexnet_fc7":
        image_input, img_branch = dense_input(image, device), Fc8Branch(int(image.shape[1]), x.dim)
    else:
        image_input = dense_input(image, device)
        img_branch = MLPBranch(int(image.shape[1]), x.dim, x.hidden, x.dropout)
    net = TwoBranchNet(img_branch, MLPBranch(int(featurizer.dim), x.dim, x.hidden, x.dropout), x.dim,
                       n_classes if aux else 0)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    threads = torch.get_num_threads()
    if device == "cpu" and branch != "alexnet":
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
            "image_input": branch, "image_identity": getattr(img_branch, "identity", None), "margin": x.margin, "aux_weight": x.aux_weight if aux else 0.0,
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
    # the public code's head as the CtI rows build it: hidden width model.bn_hidden, output xmodal.dim
    model = CtIModel(("image",), {"image": int(image.shape[1])}, category_dim=int(clip_text.shape[1]),
                     head="batchnorm", d=x.dim, bn_hidden=cfg.model.bn_hidden)
    tcfg = dataclasses.replace(cfg.train, epochs=x.epochs, lr=x.lr, weight_decay=x.weight_decay)
    result = train(model, pairs(data.split["train"]), pairs(data.split["val"]), build_loss("soft", tau=cfg.loss.tau),
                   tcfg, x.batch_size, seed=seed, device=device, progress=progress)
    te = data.test
    with torch.no_grad():
        t = model.encode_category(torch.as_tensor(np.asarray(clip_text[te]), device=device)).float().cpu().numpy()
        i = model.encode_product({"image": torch.as_tensor(np.asarray(image[te]), device=device)}).float().cpu().numpy()
    info = {"model": "CLIP + BatchNorm heads", **model.describe(), "loss": "soft", "tau": cfg.loss.tau}
    return Embedded(t, i, info, result.to_dict()), model


__all__ = ["XModalSpec", "SPECS", "image_branch", "image_features", "what_ran", "Embedded", "fit_embed_kcca", "fit_embed_two_branch", "clip_title_features", "embed_clip",
           "fit_embed_clip_heads"]
