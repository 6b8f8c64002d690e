"""SVMs of the WD/WI protocols with kernels computed by numpy (BLAS) instead of libsvm.

The reference fits ``Pipeline([StandardScaler(with_mean=False), SVC(rbf | linear)])``.
libsvm then spends nearly all its time computing kernel rows one dot product at a time.
Here the scaler is the same object, the kernel matrix is computed with one matrix product
of the scaled features, and ``SVC(kernel="precomputed")`` solves the very same problem:
decision values agree with the plain SVC to ~1e-12 (the tests check it). Scoring uses the
kernel expansion ``K(x, support vectors) @ dual_coef + intercept``, again one product.

Inputs keep the reference's dtypes: features are scaled in their own dtype (float32 for
SigNet features) and only then widened to float64, as libsvm receives them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def kernel_matrix(a: np.ndarray, b: np.ndarray | None, kind: str, gamma: float) -> np.ndarray:
    """``K[i, j] = k(a_i, b_j)`` (``b=None``: ``a`` against itself) for float64 rows.

    RBF uses libsvm's own training formula ``exp(-gamma (|a|² + |b|² - 2 a·b))``.
    """
    gram = a @ (a if b is None else b).T
    if kind == "linear":
        return gram
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = sq_a if b is None else np.einsum("ij,ij->i", b, b)
    gram *= 2 * gamma
    gram -= gamma * sq_a[:, None]
    gram -= gamma * sq_b[None, :]
    return np.exp(gram, out=gram)


def new_scaler() -> StandardScaler:
    """The reference's scaler: unit variance per feature, no centring."""
    return StandardScaler(with_mean=False)


def scaled(scaler: StandardScaler, x: np.ndarray) -> np.ndarray:
    """``scaler.transform`` in the input's dtype, then float64 (what libsvm sees)."""
    return np.asarray(scaler.transform(x), dtype=np.float64)


@dataclass
class KernelSVM:
    """A fitted SVM reduced to what scoring needs."""

    scaler: StandardScaler
    support_vectors: np.ndarray  # scaled, float64
    dual_coef: np.ndarray
    intercept: float
    kind: str
    gamma: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Decision values of raw (unscaled) features, one per row."""
        if len(x) == 0:
            return np.empty(0)
        return kernel_matrix(scaled(self.scaler, x), self.support_vectors, self.kind, self.gamma) @ self.dual_coef \
            + self.intercept

    @classmethod
    def from_svc(cls, scaler: StandardScaler, svc: SVC, support_vectors: np.ndarray, kind: str,
                 gamma: float) -> "KernelSVM":
        # scikit-learn exposes binary dual coefficients and intercept with the sign of
        # decision_function (positive = classes_[1] = genuine).
        return cls(scaler, np.ascontiguousarray(support_vectors), svc.dual_coef_[0].copy(),
                   float(svc.intercept_[0]), kind, gamma)


def class_weight(y: np.ndarray, weighted: bool) -> dict | None:
    """The WD weighting: positive class weighted by #negatives / #positives."""
    if not weighted:
        return None
    return {1: np.count_nonzero(y == -1) / float(np.count_nonzero(y == 1))}


def fit_precomputed(x: np.ndarray, y: np.ndarray, kind: str, c: float, gamma: float,
                    weighted: bool) -> KernelSVM:
    """Scaler + SVM on ``x`` with the kernel matrix computed by numpy."""
    scaler = new_scaler().fit(x)
    xs = scaled(scaler, x)
    svc = SVC(kernel="precomputed", C=c, class_weight=class_weight(y, weighted))
    svc.fit(kernel_matrix(xs, None, kind, gamma), y)
    return KernelSVM.from_svc(scaler, svc, xs[svc.support_], kind, gamma)


def fit_gram(gram: np.ndarray, y: np.ndarray, rows: np.ndarray, scaler: StandardScaler, kind: str,
             c: float, gamma: float, weighted: bool) -> KernelSVM:
    """SVM on a kernel matrix the caller built (``rows``: its scaled float64 training rows)."""
    svc = SVC(kernel="precomputed", C=c, class_weight=class_weight(y, weighted)).fit(gram, y)
    return KernelSVM.from_svc(scaler, svc, rows[svc.support_], kind, gamma)


def reference_pipeline(kind: str, c: float, gamma: float, weight: dict | None = None) -> Pipeline:
    """The reference's classifier, fitted by libsvm computing its own kernel."""
    svc = SVC(C=c, gamma=gamma, class_weight=weight) if kind == "rbf" else SVC(kernel="linear", C=c,
                                                                             class_weight=weight)
    return Pipeline([("scaler", new_scaler()), ("classifier", svc)])


def fit_libsvm(x: np.ndarray, y: np.ndarray, kind: str, c: float, gamma: float, weighted: bool) -> KernelSVM:
    """The reference's fit (libsvm kernel), scored by the kernel expansion."""
    pipeline = reference_pipeline(kind, c, gamma, class_weight(y, weighted)).fit(x, y)
    return from_pipeline(pipeline)


def from_pipeline(pipeline: Pipeline) -> KernelSVM:
    """Score a fitted reference pipeline (scaler + rbf/linear SVC) by the kernel expansion."""
    scaler, svc = pipeline[0], pipeline[-1]
    gamma = float(svc.gamma) if svc.kernel == "rbf" else 0.0
    return KernelSVM.from_svc(scaler, svc, svc.support_vectors_, svc.kernel, gamma)
