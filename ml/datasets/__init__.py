"""Movie datasets: the contract, the bundled MovieLens 100K, GroupLens files and synthetic data."""

from pathlib import Path

from ml.datasets.base import DataFormatError, Dataset
from ml.datasets.builtin import BUILTIN_NAMES, load_builtin
from ml.datasets.grouplens import GroupLensFormat, load_path, write_grouplens
from ml.datasets.synthetic import generate

__all__ = [
    "DataFormatError",
    "Dataset",
    "GroupLensFormat",
    "generate",
    "load",
    "load_builtin",
    "load_path",
    "write_grouplens",
]


def load(source: str, *, ml1m_movies: Path | str | None = None) -> Dataset:
    """Load a dataset named by a source string.

    Args:
        source: A built-in name ("ml-100k"), "synth:N" or "synth:N:SEED" for `generate(N, seed=SEED)`
            (N may use underscores, "synth:1_000_000"), or the path of a GroupLens folder or .zip.
        ml1m_movies: for "ml-100k", MovieLens 1M's movies.dat, to attach Freebase people credits
            (see `load_builtin`).

    Returns:
        The dataset.

    Raises:
        ValueError: If a "synth:" source is malformed.
        FileNotFoundError: If the source is neither built in, synthetic, nor an existing path.
        DataFormatError: If the files at the path are malformed.
    """
    if source in BUILTIN_NAMES:
        return load_builtin(source, ml1m_movies=ml1m_movies)
    if source.startswith("synth:"):
        parts = source.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            n_ratings = int(parts[1])
            seed = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise ValueError(f"Expected 'synth:N' or 'synth:N:SEED', got {source!r}.") from None
        return generate(n_ratings, seed=seed)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"No dataset {source!r}: expected one of {', '.join(BUILTIN_NAMES)}, 'synth:N[:SEED]' or a path."
        )
    return load_path(path)
