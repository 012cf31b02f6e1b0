"""The word2vec text vectors of a text-image task, computed once per (word2vec settings, seed, texts).

KCCA, TwoBranch-w2v, -noaux and -CLIPfeat of one seed fit the same word2vec: gensim with one
worker and a fixed hash function makes the vectors a function of the settings, the seed and the
training texts (in order). The first row that needs them trains it (or loads the pretrained file)
and saves the mean vector of every text of the task, with which texts had no known word, under
``<cache_dir>/xmodal/word2vec-<key>.npz``; the other rows of that seed read them, skipping the
training (~3.5 s a row on the embedded profile) and the gensim import (~2 s). The seed stays part
of the key: it changes the vectors, so each seed keeps its own. Two rows racing for one key both
train and write the same bytes (atomic writes: a reader never sees half a file).
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cti_repro.config import StudyConfig
from cti_repro.data.xmodal_pairs import XModalData
from cti_repro.io_utils import atomic_write_bytes, stable_hash

CACHE_VERSION = 1  # bump when tokenisation or the mean-vector rule changes


@dataclass(frozen=True)
class TextVectors:
    """Mean word2vec vectors of every text of a task.

    Attributes:
        vectors: [N, dim] float32; row i is the vector of ``data.texts[i]`` (zero without a known word).
        known: [N] bool; the text has at least one in-vocabulary token.
        info: :meth:`cti_repro.models.xmodal.text.Word2VecText.describe` right after fitting.
        cached: read from the cache (False: computed in this call).
    """

    vectors: np.ndarray
    known: np.ndarray
    info: dict[str, Any]
    cached: bool = False

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def describe(self, *row_sets: np.ndarray) -> dict[str, Any]:
        """What ``Word2VecText.describe()`` says after transforming the texts of ``row_sets`` in turn
        (every text when none is given): ``info`` plus the count of texts without a known word."""
        sets = row_sets or (np.arange(len(self.known)),)
        return {**self.info, "texts_without_known_word": sum(int((~self.known[np.asarray(r)]).sum()) for r in sets)}


def _pretrained_file(cfg: StudyConfig) -> str:
    w = cfg.xmodal.word2vec
    return str(cfg.path(os.path.expanduser(w.path))) if w.path else ""


def word2vec_key(cfg: StudyConfig, data: XModalData, seed: int) -> str:
    """The cache key: the word2vec settings, the seed (not for a pretrained file: it ignores it),
    the pretrained file's name, size and mtime, gensim's version, every text and the training rows in order."""
    w, path = cfg.xmodal.word2vec, _pretrained_file(cfg)
    try:
        gensim = metadata.version("gensim")
    except metadata.PackageNotFoundError:
        gensim = "not installed"
    st = Path(path).stat() if path and Path(path).is_file() else None
    return stable_hash({
        "v": CACHE_VERSION, "gensim": gensim,
        "settings": {"dim": w.dim, "epochs": w.epochs, "window": w.window, "min_count": w.min_count},
        "file": {"path": path, "size": st.st_size, "mtime": int(st.st_mtime)} if st else path,
        "seed": None if path else int(seed),
        "texts": stable_hash(list(data.texts), 64), "train": np.asarray(data.split["train"]).tolist(),
    })


def word2vec_cache_path(cfg: StudyConfig, key: str) -> Path:
    """``<cache_dir>/xmodal/word2vec-<key>.npz``."""
    return cfg.path(cfg.cache_dir) / "xmodal" / f"word2vec-{key}.npz"


def _read(path: Path, n: int) -> TextVectors | None:
    """The cached vectors of ``n`` texts, or None (with a warning when the file is there but unusable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            vectors, known, info = z["vectors"], z["known"], json.loads(str(z["info"]))
        ok = (vectors.dtype == np.float32 and vectors.ndim == 2 and vectors.shape[0] == n and known.dtype == bool
              and known.shape == (n,) and isinstance(info, dict) and info.get("dim") == vectors.shape[1])
        if ok:
            return TextVectors(vectors, known, info, cached=True)
        problem = "wrong shape or type"
    except Exception as exc:  # truncated, not a zip, bad JSON: recompute
        problem = f"{type(exc).__name__}: {exc}"
    print(f"warning: word2vec cache {path}: {problem}; recomputing", file=sys.stderr)
    return None


def word2vec_vectors(cfg: StudyConfig, data: XModalData, seed: int, use_cache: bool = True) -> TextVectors:
    """The mean word2vec vector of every text of ``data``, fitted on its training texts (or the
    pretrained ``xmodal.word2vec.path``): from the cache when there, else computed and cached.

    The vectors equal ``Word2VecText(...).fit(train texts).transform(data.texts)`` bit for bit.
    """
    key = word2vec_key(cfg, data, seed)
    path = word2vec_cache_path(cfg, key)
    hit = _read(path, len(data.texts)) if use_cache else None
    if hit is not None:
        return hit
    from cti_repro.models.xmodal.text import Word2VecText

    w = cfg.xmodal.word2vec
    model = Word2VecText(w.dim, w.epochs, w.window, w.min_count, _pretrained_file(cfg), seed)
    model.fit([data.texts[i] for i in data.split["train"]])
    info = model.describe()
    vectors, known = model.transform_known(data.texts)
    buf = io.BytesIO()
    np.savez(buf, vectors=vectors, known=known, info=np.array(json.dumps(info)))
    atomic_write_bytes(path, buf.getvalue())
    return TextVectors(vectors, known, info)


__all__ = ["TextVectors", "word2vec_key", "word2vec_cache_path", "word2vec_vectors", "CACHE_VERSION"]
