"""The word2vec vectors of a text-image task: fitted once per (settings, seed, texts), equal to a fresh fit."""

import numpy as np
import pytest

from cti_repro.config import apply_sets, load_config
from cti_repro.data.xmodal_pairs import XModalData
from cti_repro.models.xmodal.text import Word2VecText
from cti_repro.run.xmodal import text_cache
from cti_repro.run.xmodal.text_cache import word2vec_cache_path, word2vec_key, word2vec_vectors

WORDS = ["red", "blue", "steel", "mug", "cotton", "shirt", "dress", "wool", "lamp", "oak"]


def _data(n: int = 60) -> XModalData:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 4)) for _ in range(n)]
    order = rng.permutation(n)
    texts[order[-1]], texts[order[-2]] = "", "zzz qqq"  # test texts without any / without a known word
    return XModalData(texts, {"train": order[:40], "val": order[40:50], "test": order[50:]},
                      np.zeros(n, int), np.zeros(n, int))


@pytest.fixture
def cfg(tmp_path):
    return apply_sets(load_config("smoke"), [f"cache_dir={tmp_path}", "xmodal.word2vec.epochs=2"])


def test_vectors_equal_a_fresh_fit_and_its_description(cfg):
    data = _data()
    tv = word2vec_vectors(cfg, data, seed=3)
    w = cfg.xmodal.word2vec
    fresh = Word2VecText(w.dim, w.epochs, w.window, w.min_count, "", 3).fit([data.texts[i] for i in data.split["train"]])
    assert np.array_equal(tv.vectors, fresh.transform(data.texts)) and not tv.cached
    assert tv.describe() == fresh.describe()  # after transforming every text
    tr, te = data.split["train"], data.test
    again = Word2VecText(w.dim, w.epochs, w.window, w.min_count, "", 3).fit([data.texts[i] for i in tr])
    again.transform([data.texts[i] for i in tr]), again.transform([data.texts[i] for i in te])
    assert tv.describe(tr, te) == again.describe()  # KCCA's two transforms
    assert (~tv.known).sum() == 2 and not tv.known[data.test[-1]] and not tv.known[data.test[-2]]


def test_second_call_reads_the_cache_without_fitting(cfg, monkeypatch):
    data = _data()
    first = word2vec_vectors(cfg, data, seed=1)
    monkeypatch.setattr(Word2VecText, "fit", lambda *a, **k: pytest.fail("word2vec retrained"))
    second = word2vec_vectors(cfg, data, seed=1)
    assert second.cached and np.array_equal(second.vectors, first.vectors)
    assert np.array_equal(second.known, first.known) and second.describe() == first.describe()


def test_key_follows_seed_settings_texts_and_training_rows(cfg):
    data = _data()
    key = word2vec_key(cfg, data, 0)
    assert word2vec_key(cfg, data, 0) == key
    assert word2vec_key(cfg, data, 1) != key  # the seed changes the vectors: each seed its own
    assert word2vec_key(apply_sets(cfg, ["xmodal.word2vec.dim=8"]), data, 0) != key
    other = XModalData([*data.texts[:-1], "oak lamp"], data.split, data.roots, data.leaves)
    assert word2vec_key(cfg, other, 0) != key
    reordered = XModalData(data.texts, {**data.split, "train": data.split["train"][::-1]}, data.roots, data.leaves)
    assert word2vec_key(cfg, reordered, 0) != key  # gensim sees the sentences in this order
    assert not np.array_equal(word2vec_vectors(cfg, data, 0).vectors, word2vec_vectors(cfg, data, 1).vectors)


def test_unusable_cache_file_is_recomputed(cfg, capsys):
    data = _data()
    good = word2vec_vectors(cfg, data, seed=2)
    path = word2vec_cache_path(cfg, word2vec_key(cfg, data, 2))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    again = word2vec_vectors(cfg, data, seed=2)
    assert not again.cached and np.array_equal(again.vectors, good.vectors)
    assert "word2vec cache" in capsys.readouterr().err
    assert word2vec_vectors(cfg, data, seed=2).cached  # rewritten


def test_cache_version_is_in_the_key(cfg, monkeypatch):
    data = _data()
    key = word2vec_key(cfg, data, 0)
    monkeypatch.setattr(text_cache, "CACHE_VERSION", text_cache.CACHE_VERSION + 1)
    assert word2vec_key(cfg, data, 0) != key
