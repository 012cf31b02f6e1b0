"""Text representations of the two-branch network's text side: word2vec (gensim) and bag of words (sklearn).

word2vec: Rubio et al. use pre-trained vectors; ``xmodal.word2vec.path`` loads them (the
``xmarket`` profile: the GoogleNews 300-d vectors, :data:`GOOGLE_NEWS_DOWNLOAD`). Without a path
(the offline profiles) a gensim ``Word2Vec`` is trained on the tokenised *training* texts, and
``describe()`` says so. A text is the mean of the vectors of its in-vocabulary tokens (zero when
it has none; counted). Bag of words: a classical one, scikit-learn's ``CountVectorizer`` (counts
over the ``max_features`` most frequent training words, a fixed vocabulary), or
``TfidfVectorizer`` as a variant, kept sparse; fitted on the training texts only.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp


GOOGLE_NEWS_DOWNLOAD = ("python -m gensim.downloader --download word2vec-google-news-300  "
                        "(1.6 GB, into ~/gensim-data/word2vec-google-news-300/word2vec-google-news-300.gz)")


def _binary_format(p: Path) -> bool:
    """word2vec's binary format: ``.bin`` / ``.bin.gz``, and gensim-data's ``.gz`` downloads; ``.txt(.gz)`` is text."""
    name = p.name.lower()
    return name.endswith((".bin", ".bin.gz")) or (name.endswith(".gz") and not name.endswith(".txt.gz"))


# gensim.utils.PAT_ALPHABETIC: runs of word characters without digits
_ALPHABETIC = re.compile(r"(((?![\d])\w)+)", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: gensim's ``simple_preprocess(text, min_len=1, max_len=40)`` (a test
    checks they agree), without importing gensim (~2 s, which the bag-of-words rows need nothing else of)."""
    if not isinstance(text, str):
        text = str(text, "utf8", errors="ignore")
    return [t for t in (m.group() for m in _ALPHABETIC.finditer(text.lower())) if len(t) <= 40 and not t.startswith("_")]


def _stable_hash(s: str) -> int:
    # gensim seeds each word vector with hashfxn(word + seed); Python's hash() changes per process.
    return zlib.crc32(s.encode("utf-8"))


class Word2VecText:
    """Mean word2vec vector of a text.

    Args:
        dim: vector size (ignored when ``path`` is given).
        epochs, window, min_count: gensim training parameters.
        path: pretrained vectors: gensim ``KeyedVectors`` (``.kv``) or word2vec format (``.bin``
            binary, anything else text).
        seed: gensim's seed (with one worker and a fixed hash the vectors are reproducible).
    """

    def __init__(self, dim: int = 100, epochs: int = 20, window: int = 5, min_count: int = 1, path: str = "",
                 seed: int = 0) -> None:
        self.dim, self.epochs, self.window, self.min_count, self.path, self.seed = dim, epochs, window, min_count, path, seed
        self.wv = None
        self.stats: dict[str, int] = {}

    def fit(self, texts: list[str]) -> Word2VecText:
        from gensim.models import KeyedVectors, Word2Vec

        if self.path:
            p = Path(self.path)
            if not p.is_file():
                raise FileNotFoundError(f"xmodal.word2vec.path: {p}: no such file; Rubio et al.'s pretrained vectors: "
                                        f"{GOOGLE_NEWS_DOWNLOAD}")
            self.wv = (KeyedVectors.load(str(p)) if p.suffix == ".kv"
                       else KeyedVectors.load_word2vec_format(str(p), binary=_binary_format(p)))
        else:
            sentences = [tokenize(t) for t in texts]
            model = Word2Vec(sentences=sentences, vector_size=self.dim, window=self.window, min_count=self.min_count,
                             workers=1, seed=self.seed, epochs=self.epochs, hashfxn=_stable_hash, sg=0)
            self.wv = model.wv
        self.dim = int(self.wv.vector_size)
        self.stats["vocabulary"] = len(self.wv.key_to_index)
        return self

    def transform_known(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """[n, dim] float32 mean vectors, and [n] bool: the text has a known token (else its row is zero)."""
        if self.wv is None:
            raise RuntimeError("fit() first")
        out = np.zeros((len(texts), self.dim), np.float32)
        known = np.zeros(len(texts), bool)
        for i, t in enumerate(texts):
            toks = [w for w in tokenize(t) if w in self.wv.key_to_index]
            if toks:
                out[i], known[i] = self.wv[toks].mean(0), True
        return out, known

    def transform(self, texts: list[str]) -> np.ndarray:
        """[n, dim] float32 mean vectors; a text with no known token is a zero row (counted in ``stats``)."""
        out, known = self.transform_known(texts)
        self.stats["texts_without_known_word"] = self.stats.get("texts_without_known_word", 0) + int((~known).sum())
        return out

    def describe(self) -> dict:
        return {"text": "word2vec", "dim": self.dim, "pretrained": bool(self.path), "path": self.path,
                "epochs": None if self.path else self.epochs, **self.stats}


class BagOfWordsText:
    """Raw counts (``kind="count"``, a classical bag of words) or TF-IDF (``"tfidf"``) over the
    ``max_features`` most frequent training words, sparse."""

    def __init__(self, kind: str = "tfidf", max_features: int = 5000) -> None:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        if kind not in ("tfidf", "count"):
            raise ValueError(f"bag-of-words kind must be tfidf or count, got {kind!r}")
        cls = TfidfVectorizer if kind == "tfidf" else CountVectorizer
        self.kind = kind
        self.vectorizer = cls(tokenizer=tokenize, lowercase=False, token_pattern=None, max_features=max_features,
                              dtype=np.float32)

    def fit(self, texts: list[str]) -> BagOfWordsText:
        self.vectorizer.fit(texts)
        self.dim = len(self.vectorizer.vocabulary_)
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(self.vectorizer.transform(texts), dtype=np.float32)

    def describe(self) -> dict:
        return {"text": f"bag of words ({self.kind})", "kind": self.kind, "dim": self.dim}


__all__ = ["GOOGLE_NEWS_DOWNLOAD", "tokenize", "Word2VecText", "BagOfWordsText"]
