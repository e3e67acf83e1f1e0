"""The scikit-learn style estimator over :mod:`motiflab.zernike`: patches in, Zernike moments out."""
from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from ._zernike_checks import as_flat_patches, check_n_max
from .errors import MotifLabError
from .zernike import reconstruct_patches, rotinv_indices, zernike_basis, zernike_indices, zernike_moments

__all__ = ["ZernikeFeaturizer"]


try:  # sklearn is a hard dependency; the fallback only keeps imports cheap to reason about
    from sklearn.base import BaseEstimator, TransformerMixin
except Exception:  # pragma: no cover
    BaseEstimator = object  # type: ignore[assignment,misc]
    TransformerMixin = object  # type: ignore[assignment,misc]


class ZernikeFeaturizer(TransformerMixin, BaseEstimator):
    """scikit-learn style transformer: patches -> Zernike moments.

    Parameters
    ----------
    n_max : int, default 10
        Highest radial order (66 signed moments / 36 invariant features).
    rotinv : bool, default False
        Return rotation-invariant magnitudes instead of signed moments.

    Attributes
    ----------
    patch_size_ : int
        Side of the patches seen in :meth:`fit`.
    n_features_out_ : int
        Number of features :meth:`transform` returns.
    n_ : ndarray
        Radial order of each output feature.
    m_ : ndarray
        Azimuthal frequency of each output feature (``>= 0`` if ``rotinv``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((5, 21, 21), dtype=np.float32)
    >>> zf = ZernikeFeaturizer(n_max=10).fit(X)
    >>> zf.transform(X).shape
    (5, 66)
    """

    def __init__(self, n_max: int = 10, rotinv: bool = False):
        self.n_max = n_max
        self.rotinv = rotinv

    def fit(self, patches, y=None):
        """Record the patch size and build (cache) the basis.

        Parameters
        ----------
        patches : ndarray, shape (N, P, P) or (N, P*P)
            Patches; only their shape is used.
        y : ignored

        Returns
        -------
        self
        """
        _, P = as_flat_patches(patches)
        n_max = check_n_max(self.n_max)
        zernike_basis(P, n_max)
        self.patch_size_ = P
        if self.rotinv:
            self.n_, self.m_ = rotinv_indices(n_max)
        else:
            self.n_, self.m_ = zernike_indices(n_max)
        self.n_features_out_ = int(self.n_.size)
        return self

    def _check_fitted(self):
        if not hasattr(self, "patch_size_"):
            raise MotifLabError("ZernikeFeaturizer is not fitted; call fit(patches) first.")

    def transform(self, patches):
        """Zernike features of ``patches``; see :func:`zernike_moments`.

        Parameters
        ----------
        patches : ndarray, shape (N, P, P) or (N, P*P)

        Returns
        -------
        ndarray, shape (N, n_features_out_), float32
        """
        self._check_fitted()
        _, P = as_flat_patches(patches)
        if P != self.patch_size_:
            raise MotifLabError(
                f"patches are {P} x {P} but the featurizer was fitted on {self.patch_size_} x "
                f"{self.patch_size_}; refit or extract patches of the same size."
            )
        return zernike_moments(patches, self.n_max, rotinv=self.rotinv)

    def inverse_transform(self, moments):
        """Patches rebuilt from signed moments; see :func:`reconstruct_patches`.

        Parameters
        ----------
        moments : ndarray, shape (N, J)

        Returns
        -------
        ndarray, shape (N, P, P)

        Raises
        ------
        MotifLabError
            If ``rotinv=True`` (magnitudes have lost the phase needed to rebuild).
        """
        self._check_fitted()
        if self.rotinv:
            raise MotifLabError(
                "rotation-invariant features cannot be inverted (the orientation is lost); use "
                "ZernikeFeaturizer(rotinv=False) to reconstruct patches."
            )
        return reconstruct_patches(moments, self.patch_size_, self.n_max)
