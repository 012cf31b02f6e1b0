"""Exact regularised KCCA against a direct solution of its generalised eigenproblem, and its memory bound."""

import numpy as np
import pytest
import scipy.linalg

from cti_repro.models.xmodal.kcca import (
    ExactKCCA, KCCAMemoryError, check_exact_kcca_memory, exact_kcca_memory_bytes,
)


def _rbf_centred(x: np.ndarray, gamma: float) -> np.ndarray:
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    k = np.exp(-gamma * d2)
    h = np.eye(len(x)) - 1.0 / len(x)
    return h @ k @ h


@pytest.mark.parametrize("n,k", [(20, 3), (5, 4)])  # ARPACK on the operator; the dense SVD when k >= n - 1
def test_exact_kcca_matches_the_direct_generalised_eigen_solution_on_20_points(n, k):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    img = np.c_[z, z[:, :1] ** 2] @ rng.normal(size=(3, 5)) + 0.05 * rng.normal(size=(n, 5))
    txt = np.tanh(z) @ rng.normal(size=(2, 4)) + 0.05 * rng.normal(size=(n, 4))
    gamma, reg = 0.3, 0.05
    m = ExactKCCA(n_components=k, kernel="rbf", gamma=gamma, reg=reg).fit(img, txt)
    # the textbook form: [0 KxKy; KyKx 0] w = rho [(Kx + kI)^2 0; 0 (Ky + kI)^2] w
    kx, ky, kappa = _rbf_centred(img, gamma), _rbf_centred(txt, gamma), reg * n
    zero = np.zeros((n, n))
    a = np.block([[zero, kx @ ky], [ky @ kx, zero]])
    rx, ry = kx + kappa * np.eye(n), ky + kappa * np.eye(n)
    b = np.block([[rx @ rx, zero], [zero, ry @ ry]])
    vals, vecs = scipy.linalg.eigh(a, b)
    top = np.argsort(vals)[::-1][:k]
    assert m.correlations_ == pytest.approx(vals[top], abs=1e-8)
    assert 0 < m.correlations_[-1] <= m.correlations_[0] < 1
    # scores of the training rows = centred kernel rows times the directions (each half of w has B-norm 1/2)
    z_img, z_txt = m.transform_image(img), m.transform_text(txt)
    for j, col in enumerate(top):
        alpha, beta = vecs[:n, col] * np.sqrt(2), vecs[n:, col] * np.sqrt(2)
        want_i, want_t = kx @ alpha, ky @ beta
        sign = np.sign(want_i @ z_img[:, j])
        assert z_img[:, j] == pytest.approx(sign * want_i, abs=1e-5)
        assert z_txt[:, j] == pytest.approx(sign * want_t, abs=1e-5)  # the pair keeps one sign
    assert m.info["method"] == "exact" and m.info["training_descriptors"] == n


def test_exact_kcca_aligns_paired_views_and_states_its_memory_bound():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(150, 3))
    img, txt = z @ rng.normal(size=(3, 8)), np.sin(z) @ rng.normal(size=(3, 6))
    m = ExactKCCA(n_components=3, reg=1e-2).fit(img[:120], txt[:120])
    from cti_repro.evaluation.xmodal_metrics import median_rank_percent, true_match_ranks

    r = true_match_ranks(m.transform_text(txt[120:]), m.transform_image(img[120:]))
    assert median_rank_percent(r, 30) < 25  # chance: 50
    assert m.info["gamma_rule"] == "median heuristic"
    assert exact_kcca_memory_bytes(10, 2, 3) == 8 * (400 + 50)
    info = check_exact_kcca_memory(100, 5, 5, 1.0)  # the limit: 1 GiB or 80% of the free memory
    fits, limit = info["max_descriptors_that_fit"], info["limit_gib"] * 2**30
    assert exact_kcca_memory_bytes(fits, 5, 5) <= limit * (1 + 1e-4) < exact_kcca_memory_bytes(fits + 1, 5, 5)
    with pytest.raises(KCCAMemoryError, match=r"max_descriptors to at most [\d,]+.*KCCA-Nystroem"):
        ExactKCCA(memory_gb=1e-6).fit(img, txt)
    with pytest.raises(KCCAMemoryError):  # the whole 431,841-image training set never fits
        check_exact_kcca_memory(431_841, 4096, 300, 64.0)
