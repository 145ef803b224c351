"""Item x item weight matrices (EASE weights, kNN and content similarities), dense or sparse.

Row `j` says how much having interacted with item `j` supports every other item, so a user's
scores are the weighted sum of the rows of the items in their history. Small catalogs keep the
full dense matrix (float32); large ones keep the strongest `neighbours` entries of each row as a
CSR matrix, so both memory and the per-request cost grow linearly with the catalog.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ml.models.base import FloatArray, IndexArray

logger = logging.getLogger(__name__)

# Rows of the product computed at once when building top-k neighbours: 2,048 rows x 60k items of
# float32 is 0.5 GB at most, and far less for the catalogs we serve.
CHUNK_ROWS = 2048


def sparsify_rows(dense: NDArray[np.floating[Any]], k: int) -> sp.csr_matrix:
    """Keep the `k` largest entries of each row (zeros dropped).

    Args:
        dense: A square or rectangular matrix.
        k: Entries kept per row.

    Returns:
        A float32 CSR matrix of the same shape.
    """
    n_rows, n_cols = dense.shape
    if k >= n_cols:
        out = sp.csr_matrix(dense.astype(np.float32))
        out.eliminate_zeros()
        return out
    cols = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dense, cols, axis=1).astype(np.float32)
    rows = np.repeat(np.arange(n_rows), k)
    out = sp.csr_matrix((values.ravel(), (rows, cols.ravel())), shape=(n_rows, n_cols))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def top_k_products(
    left: sp.csr_matrix, right: sp.csr_matrix, k: int, *, exclude_diagonal: bool
) -> sp.csr_matrix:
    """The `k` largest entries of each row of `left @ right.T`, computed in row chunks.

    Args:
        left: n x d sparse matrix.
        right: m x d sparse matrix.
        k: Entries kept per row.
        exclude_diagonal: Zero entry (i, i) first (for item-item similarities).

    Returns:
        n x m float32 CSR matrix with at most k positive entries per row.
    """
    right_t = right.T.tocsc().astype(np.float32)
    left = left.tocsr().astype(np.float32)
    blocks = []
    for start in range(0, left.shape[0], CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, left.shape[0])
        block = (left[start:stop] @ right_t).toarray()
        if exclude_diagonal:
            rows = np.arange(stop - start)
            cols = rows + start
            ok = cols < block.shape[1]
            block[rows[ok], cols[ok]] = 0.0
        np.maximum(block, 0.0, out=block)
        blocks.append(sparsify_rows(block, k))
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix(left.shape[:1] + right.shape[:1])


class ItemItem:
    """Item x item weights with the two operations serving needs: user scores and explanations.

    Args:
        matrix: Dense float32 array or CSR matrix, rows = source items, columns = target items.
    """

    def __init__(self, matrix: NDArray[np.float32] | sp.csr_matrix) -> None:
        if sp.issparse(matrix):
            self.sparse: sp.csr_matrix | None = sp.csr_matrix(matrix, dtype=np.float32)
            self.dense: NDArray[np.float32] | None = None
        else:
            self.dense = np.ascontiguousarray(matrix, dtype=np.float32)
            self.sparse = None
        self.n_items: int = int(matrix.shape[1])

    @property
    def is_dense(self) -> bool:
        """Whether the full matrix is kept."""
        return self.dense is not None

    def scores(self, items: IndexArray, weights: NDArray[np.floating[Any]] | None = None) -> FloatArray:
        """Weighted sum of the rows of `items` (a user's score of every item).

        Args:
            items: Positions of the items in a history.
            weights: One weight per item (default 1).

        Returns:
            One score per item (float64).
        """
        if len(items) == 0:
            return np.zeros(self.n_items)
        w = np.ones(len(items), dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
        if self.dense is not None:
            return (w @ self.dense[items]).astype(np.float64)
        assert self.sparse is not None
        return np.asarray(self.sparse[items].T @ w, dtype=np.float64).ravel()

    def scores_for(
        self, items: IndexArray, targets: IndexArray, weights: NDArray[np.floating[Any]] | None = None
    ) -> FloatArray:
        """`scores(items, weights)[targets]` without computing the other columns."""
        if len(items) == 0 or len(targets) == 0:
            return np.zeros(len(targets))
        w = np.ones(len(items), dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
        if self.dense is not None:
            return (w @ self.dense[np.ix_(items, targets)]).astype(np.float64)
        assert self.sparse is not None
        return np.asarray(self.sparse[items][:, targets].T @ w, dtype=np.float64).ravel()

    def weights_between(self, items: IndexArray, targets: IndexArray) -> FloatArray:
        """Entries (j, t) for j in `items`, t in `targets`: which history movie supports which target."""
        if len(items) == 0 or len(targets) == 0:
            return np.zeros((len(items), len(targets)))
        if self.dense is not None:
            return self.dense[np.ix_(items, targets)].astype(np.float64)
        assert self.sparse is not None
        return np.asarray(self.sparse[items][:, targets].toarray(), dtype=np.float64)

    def row(self, item: int) -> FloatArray:
        """Weights from one item to every item."""
        if self.dense is not None:
            return self.dense[item].astype(np.float64)
        assert self.sparse is not None
        return np.asarray(self.sparse[item].toarray(), dtype=np.float64).ravel()

    def to_arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        """Arrays for `from_arrays`, keys prefixed."""
        if self.dense is not None:
            return {f"{prefix}dense": self.dense}
        assert self.sparse is not None
        return {
            f"{prefix}indptr": self.sparse.indptr.astype(np.int64),
            f"{prefix}indices": self.sparse.indices.astype(np.int32),
            f"{prefix}data": self.sparse.data.astype(np.float32),
            f"{prefix}shape": np.asarray(self.sparse.shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[Any]], prefix: str) -> ItemItem:
        """Rebuild from `to_arrays` output."""
        if f"{prefix}dense" in arrays:
            return cls(arrays[f"{prefix}dense"])
        shape = tuple(int(v) for v in arrays[f"{prefix}shape"])
        matrix = sp.csr_matrix(
            (arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]), shape=shape
        )
        return cls(matrix)

    @classmethod
    def has_arrays(cls, arrays: dict[str, NDArray[Any]], prefix: str) -> bool:
        """Whether `arrays` holds a matrix saved under `prefix`."""
        return f"{prefix}dense" in arrays or f"{prefix}indptr" in arrays
