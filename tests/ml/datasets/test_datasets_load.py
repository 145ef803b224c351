from __future__ import annotations

from pathlib import Path

import pytest

from ml.datasets import generate, load, write_grouplens


class TestLoad:
    def test_builtin_name(self) -> None:
        assert len(load("ml-100k").ratings) == 100_000

    def test_synthetic_with_and_without_seed(self) -> None:
        assert load("synth:2_000").ratings.equals(generate(2_000).ratings)
        assert load("synth:2000:5").ratings.equals(generate(2_000, seed=5).ratings)

    def test_path(self, tmp_path: Path) -> None:
        folder = write_grouplens(generate(1_000), tmp_path / "ml-latest-small", "ml-latest")
        dataset = load(str(folder))
        assert (dataset.name, len(dataset.ratings)) == ("ml-latest-small", 1_000)

    @pytest.mark.parametrize("source", ["synth:", "synth:many", "synth:10:1:2"])
    def test_bad_synthetic_source(self, source: str) -> None:
        with pytest.raises(ValueError, match="synth:N"):
            load(source)

    def test_unknown_source(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="ml-100k"):
            load(str(tmp_path / "missing"))
