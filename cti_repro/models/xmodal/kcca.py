"""The KCCA baseline of Rubio et al. (2017): kernel CCA between image and text features.

Two fits: :class:`ExactKCCA`, regularised kernel CCA on the full n x n kernel matrices (Bach and
Jordan 2002, the method Rubio et al. cite; the ``KCCA`` row), and :class:`KCCA`, a scalable
approximation (the ``KCCA-Nystroem`` variant, labelled approximate).

The approximation goes through scikit-learn: each view is mapped by a Nystroem approximation of its kernel
(``m`` landmark descriptors, default RBF) and sklearn's ``CCA`` finds the canonical directions of
the two mapped views; queries and candidates are then compared by cosine in the canonical space.
Exact KCCA needs two n x n kernel matrices, which is why Rubio et al. trained it on 10,000
descriptors; here too the number of training descriptors is capped (``xmodal.kcca.max_descriptors``,
a seeded random subset of the training products) and stated in the result, and before fitting the
memory is estimated: a request that does not fit is refused with :class:`KCCAMemoryError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, svds

GiB = float(1 << 30)


class KCCAMemoryError(ValueError, MemoryError):
    """Fitting KCCA on this many descriptors would need more memory than allowed; the message says how many fit."""


def kcca_memory_bytes(n: int, d_image: int, d_text: int, m: int, k: int) -> int:
    """Peak bytes of a fit, estimated (float64 throughout).

    Per view: the Nystroem features [n, m]; sklearn's CCA copies, centres and scales both views
    (about two more [n, m] copies each) and keeps the scores [n, k]; plus the inputs [n, d] and the
    landmark kernels [m, m] with their SVD (about two [m, m] per view)::

        bytes = 8 * (6 n m + n (d_image + d_text) + 4 m**2 + 4 n k)
    """
    return 8 * (6 * n * m + n * (d_image + d_text) + 4 * m * m + 4 * n * k)


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` (Linux), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_kcca_memory(n: int, d_image: int, d_text: int, m: int, k: int, memory_gb: float) -> dict[str, Any]:
    """Refuse (``KCCAMemoryError``) when the estimate exceeds ``memory_gb`` or the free memory.

    Returns:
        ``{"estimate_gib", "limit_gib", "max_descriptors_that_fit"}`` when it fits.
    """
    limit, free = _memory_limit(memory_gb)
    need = kcca_memory_bytes(n, d_image, d_text, m, k)
    per_row = kcca_memory_bytes(1, d_image, d_text, m, k) - kcca_memory_bytes(0, d_image, d_text, m, k)
    fits = max(0, int((limit - kcca_memory_bytes(0, d_image, d_text, m, k)) // per_row))
    return _within_limit(need, limit, free, fits, memory_gb,
                         f"KCCA on {n:,} training descriptors with {m} Nystroem components needs about {_size(need)}",
                         " or lower xmodal.kcca.nystroem_components")


def _memory_limit(memory_gb: float) -> tuple[float, int | None]:
    """``(bytes allowed, bytes free or None)``: ``memory_gb``, at most 80% of the free memory (room for
    the rest of the process)."""
    free = available_memory_bytes()
    limit = memory_gb * GiB
    return (limit if free is None else min(limit, 0.8 * free)), free


def _within_limit(need: float, limit: float, free: int | None, fits: int, memory_gb: float, what: str,
                  remedy: str) -> dict[str, Any]:
    """``{"estimate_gib", "limit_gib", "max_descriptors_that_fit"}`` if ``need <= limit``; else raise
    :class:`KCCAMemoryError`: ``what``, the limit and where it comes from, ``max_descriptors``, ``remedy``."""
    if need > limit:
        raise KCCAMemoryError(
            f"{what}, more than the {_size(limit)} allowed (xmodal.kcca.memory_gb = {memory_gb}"
            + (f", {free / GiB:.1f} GiB free" if free is not None else "")
            + f"); set xmodal.kcca.max_descriptors to at most {fits:,}{remedy}")
    return {"estimate_gib": round(need / GiB, 4), "limit_gib": round(limit / GiB, 4), "max_descriptors_that_fit": fits}


def _size(b: float) -> str:
    return f"{b / GiB:.2f} GiB" if b >= GiB / 10 else f"{b / (1 << 20):.2f} MiB"


@dataclass
class KCCA:
    """Nystroem kernel maps of both views + sklearn CCA.

    Args:
        n_components: canonical components k.
        nystroem_components: landmark descriptors m per view.
        kernel: sklearn kernel name (``rbf``, ``poly``, ``cosine``, ...).
        gamma: kernel width; 0 = sklearn's default.
        max_descriptors: training pairs used at most (a seeded random subset beyond that).
        max_iter: CCA's NIPALS iterations per component.
        memory_gb: the refusal threshold of :func:`check_kcca_memory`.
        seed: seeds the subset and the Nystroem landmarks.
    """

    n_components: int = 32
    nystroem_components: int = 256
    kernel: str = "rbf"
    gamma: float = 0.0
    max_descriptors: int = 10000
    max_iter: int = 500
    memory_gb: float = 8.0
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def fit(self, image: np.ndarray, text: np.ndarray) -> KCCA:
        """Fit on aligned training rows (row i of ``image`` and of ``text`` are one product)."""
        from sklearn.cross_decomposition import CCA
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.kernel_approximation import Nystroem

        n_train = len(image)
        if n_train != len(text) or n_train < 2:
            raise ValueError(f"KCCA needs >= 2 aligned training pairs, got {len(image)} images and {len(text)} texts")
        n = min(n_train, self.max_descriptors)
        m = min(self.nystroem_components, n)
        k = min(self.n_components, m)
        mem = check_kcca_memory(n, image.shape[1], text.shape[1], m, k, self.memory_gb)
        rows = np.sort(np.random.default_rng(self.seed).choice(n_train, n, replace=False)) if n < n_train else np.arange(n)
        x, y = np.asarray(image[rows], np.float64), np.asarray(text[rows], np.float64)
        gamma = self.gamma or None
        self.maps_ = [Nystroem(kernel=self.kernel, gamma=gamma, n_components=m, random_state=self.seed).fit(v) for v in (x, y)]
        fx, fy = self.maps_[0].transform(x), self.maps_[1].transform(y)
        self.cca_ = CCA(n_components=k, scale=True, max_iter=self.max_iter)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.cca_.fit(fx, fy)
        self.info = {"method": "approximate (Nystroem)", "training_descriptors": int(n), "training_products": int(n_train), "nystroem_components": int(m),
                     "n_components": int(k), "kernel": self.kernel, "gamma": self.gamma or "1/n_features",
                     "convergence_warnings": sum(issubclass(w.category, ConvergenceWarning) for w in caught),
                     "memory": mem}
        return self

    def transform_image(self, image: np.ndarray) -> np.ndarray:
        """Canonical image scores [n, k]."""
        return np.asarray(self.cca_.transform(self.maps_[0].transform(np.asarray(image, np.float64))), np.float32)

    def transform_text(self, text: np.ndarray) -> np.ndarray:
        """Canonical text scores [n, k] (sklearn's transform needs an X: a zero block stands in)."""
        fy = self.maps_[1].transform(np.asarray(text, np.float64))
        fx = np.zeros((len(fy), self.cca_.x_weights_.shape[0]))
        return np.asarray(self.cca_.transform(fx, fy)[1], np.float32)


def exact_kcca_memory_bytes(n: int, d_image: int, d_text: int) -> int:
    """Peak bytes of an :class:`ExactKCCA` fit (float64), an upper bound.

    Four n x n matrices at most (the two kernels' Cholesky factors, the next kernel and the
    squared distances it is built from) plus both inputs::

        bytes = 8 * (4 n**2 + n (d_image + d_text))

    10,000 descriptors (Rubio et al.'s) of 4096 + 300 dimensions: about 3.3 GiB.
    """
    return 8 * (4 * n * n + n * (d_image + d_text))


def check_exact_kcca_memory(n: int, d_image: int, d_text: int, memory_gb: float) -> dict[str, Any]:
    """Refuse (:class:`KCCAMemoryError`) an exact fit whose :func:`exact_kcca_memory_bytes` exceeds
    ``memory_gb`` or 80% of the free memory; else ``{"estimate_gib", "limit_gib", "max_descriptors_that_fit"}``."""
    limit, free = _memory_limit(memory_gb)
    need = exact_kcca_memory_bytes(n, d_image, d_text)
    d = d_image + d_text  # largest n with 32 n**2 + 8 n d <= limit
    fits = max(0, int((-8 * d + np.sqrt(64.0 * d * d + 128.0 * limit)) / 64.0))
    return _within_limit(need, limit, free, fits, memory_gb,
                         f"exact KCCA on {n:,} training descriptors needs about {_size(need)} (four {n:,} x {n:,} "
                         "float64 matrices)", ", or run the approximate KCCA-Nystroem variant")


def _median_gamma(x: np.ndarray, seed: int, sample: int = 1000) -> float:
    """``1 / median squared distance`` between training rows (a sample of ``sample`` rows): the median heuristic."""
    from sklearn.metrics.pairwise import euclidean_distances

    rows = np.random.default_rng(seed).choice(len(x), min(sample, len(x)), replace=False)
    d2 = euclidean_distances(x[rows], squared=True)
    med = float(np.median(d2[np.triu_indices(len(rows), 1)])) if len(rows) > 1 else 0.0
    return 1.0 / med if med > 0 else 1.0


def _centre_train(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``H K H`` with ``H = I - 11'/n``, in place; returns it, K's column means and grand mean (to centre new rows)."""
    col = k.mean(axis=0)
    grand = float(col.mean())
    k -= col[None, :]
    k -= col[:, None]
    k += grand
    return k, col, grand


@dataclass
class ExactKCCA:
    """Regularised kernel CCA (Bach and Jordan 2002; Hardoon et al. 2004) on the full kernel matrices.

    With centred Gram matrices ``Kx``, ``Ky`` of the n training pairs and ``kappa = reg * n``, the
    canonical directions maximise ``a' Kx Ky b / sqrt(a' (Kx + kappa I)^2 a * b' (Ky + kappa I)^2 b)``.
    Substituting ``u = (Kx + kappa I) a`` and ``v = (Ky + kappa I) b`` turns this into the SVD of
    ``M = Nx Ny`` with ``N = K (K + kappa I)^-1 = I - kappa (K + kappa I)^-1`` (symmetric): the
    singular values are the canonical correlations, ``a = (Kx + kappa I)^-1 u``. Only the Cholesky
    factors of ``K + kappa I`` are kept; the top k singular triplets come from ARPACK (``svds``,
    seeded start vector) on ``M`` as an operator, each product two pairs of triangular solves, so a
    fit costs two n x n kernels, two Cholesky factorisations and O(n**2) per Lanczos step, not the
    O(n**3) eigendecompositions. A new row's score is its centred kernel row times ``a`` (image) or
    ``b`` (text).

    Args:
        n_components: canonical components k.
        kernel: sklearn pairwise kernel (``rbf``, ``cosine``, ``linear``, ``poly``...).
        gamma: RBF / poly width; 0 = the median heuristic (1 / median squared training distance) per view.
        reg: the regulariser, ``kappa = reg * n``.
        max_descriptors: training pairs used at most (a seeded random subset beyond that; Rubio et al.: 10,000).
        memory_gb: the refusal threshold of :func:`check_exact_kcca_memory`.
        seed: seeds the subset and the median heuristic's sample.
    """

    n_components: int = 32
    kernel: str = "rbf"
    gamma: float = 0.0
    reg: float = 1e-3
    max_descriptors: int = 10000
    memory_gb: float = 8.0
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def _kernel(self, a: np.ndarray, b: np.ndarray, gamma: float | None) -> np.ndarray:
        from sklearn.metrics.pairwise import pairwise_kernels

        params = {"gamma": gamma} if self.kernel in ("rbf", "laplacian", "poly", "sigmoid", "chi2") else {}
        return np.asarray(pairwise_kernels(a, b, metric=self.kernel, **params), np.float64)

    def fit(self, image: np.ndarray, text: np.ndarray) -> ExactKCCA:
        """Fit on aligned training rows (row i of ``image`` and of ``text`` are one product)."""
        n_train = len(image)
        if n_train != len(text) or n_train < 2:
            raise ValueError(f"KCCA needs >= 2 aligned training pairs, got {len(image)} images and {len(text)} texts")
        n = min(n_train, self.max_descriptors)
        k = min(self.n_components, n - 1)
        mem = check_exact_kcca_memory(n, image.shape[1], text.shape[1], self.memory_gb)
        rows = np.sort(np.random.default_rng(self.seed).choice(n_train, n, replace=False)) if n < n_train else np.arange(n)
        views = [np.asarray(image[rows], np.float64), np.asarray(text[rows], np.float64)]
        kappa = self.reg * n
        self.train_, self.gamma_, self.centre_, chol = [], [], [], []
        for v in views:
            g = (self.gamma or _median_gamma(v, self.seed)) if self.kernel in ("rbf", "laplacian") else (self.gamma or None)
            kc, col, grand = _centre_train(self._kernel(v, v, g))
            kc[np.diag_indices(n)] += kappa
            chol.append(scipy.linalg.cho_factor(kc, lower=True, overwrite_a=True, check_finite=False))
            del kc
            self.train_.append(v)
            self.gamma_.append(g)
            self.centre_.append((col, grand))

        def shrink(c, x: np.ndarray) -> np.ndarray:  # N x = x - kappa (K + kappa I)^-1 x
            return x - kappa * scipy.linalg.cho_solve(c, x, check_finite=False)

        if k < n - 1:
            op = LinearOperator((n, n), dtype=np.float64, matvec=lambda x: shrink(chol[0], shrink(chol[1], x)),
                                rmatvec=lambda x: shrink(chol[1], shrink(chol[0], x)))
            u, s, vt = svds(op, k=k, tol=0, v0=np.random.default_rng(self.seed).standard_normal(n))
            order = np.argsort(s)[::-1]
            u, s, vt = u[:, order], s[order], vt[order]
        else:  # tiny n: ARPACK needs k < n - 1; the dense SVD of M costs nothing here
            u, s, vt = np.linalg.svd(shrink(chol[0], shrink(chol[1], np.eye(n))))
            u, s, vt = u[:, :k], s[:k], vt[:k]
        self.correlations_ = s
        self.dirs_ = [scipy.linalg.cho_solve(c, w, check_finite=False) for c, w in zip(chol, (u, vt.T))]
        self.info = {"method": "exact", "training_descriptors": int(n), "training_products": int(n_train),
                     "n_components": int(k), "kernel": self.kernel, "reg": self.reg, "kappa": kappa,
                     "gamma": [None if g is None else float(g) for g in self.gamma_],
                     "gamma_rule": "given" if self.gamma else "median heuristic",
                     "canonical_correlations": np.round(self.correlations_[:8], 6).tolist(), "memory": mem}
        return self

    def _scores(self, view: int, x: np.ndarray) -> np.ndarray:
        kx = self._kernel(np.asarray(x, np.float64), self.train_[view], self.gamma_[view])
        col, grand = self.centre_[view]
        kx = kx - col[None, :] - kx.mean(axis=1, keepdims=True) + grand
        return np.asarray(kx @ self.dirs_[view], np.float32)

    def transform_image(self, image: np.ndarray) -> np.ndarray:
        """Canonical image scores [n, k]."""
        return self._scores(0, image)

    def transform_text(self, text: np.ndarray) -> np.ndarray:
        """Canonical text scores [n, k]."""
        return self._scores(1, text)


__all__ = ["ExactKCCA", "exact_kcca_memory_bytes", "check_exact_kcca_memory", "KCCA", "KCCAMemoryError", "kcca_memory_bytes", "check_kcca_memory", "available_memory_bytes"]
