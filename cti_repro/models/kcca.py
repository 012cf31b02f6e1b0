"""The KCCA baseline of Rubio et al. (2017): kernel CCA between image and text features.

Kernel CCA through scikit-learn: each view is mapped by a Nystroem approximation of its kernel
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
    limit = memory_gb * GiB
    free = available_memory_bytes()
    if free is not None:
        limit = min(limit, 0.8 * free)  # leave room for the rest of the process
    need = kcca_memory_bytes(n, d_image, d_text, m, k)
    per_row = kcca_memory_bytes(1, d_image, d_text, m, k) - kcca_memory_bytes(0, d_image, d_text, m, k)
    fits = max(0, int((limit - kcca_memory_bytes(0, d_image, d_text, m, k)) // per_row))
    info = {"estimate_gib": round(need / GiB, 4), "limit_gib": round(limit / GiB, 4), "max_descriptors_that_fit": fits}
    if need > limit:
        raise KCCAMemoryError(
            f"KCCA on {n:,} training descriptors with {m} Nystroem components needs about {_size(need)}, "
            f"more than the {_size(limit)} allowed (xmodal.kcca.memory_gb = {memory_gb}"
            + (f", {free / GiB:.1f} GiB free" if free is not None else "")
            + f"); set xmodal.kcca.max_descriptors to at most {fits:,} or lower xmodal.kcca.nystroem_components")
    return info


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
        self.info = {"training_descriptors": int(n), "training_products": int(n_train), "nystroem_components": int(m),
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


__all__ = ["KCCA", "KCCAMemoryError", "kcca_memory_bytes", "check_kcca_memory", "available_memory_bytes"]
