"""Fuzzy movie title search: "shawshenk", "the matrix", "Heat (1995)" -> catalogue movies.

Titles and queries go through the same normalisation (lower case, accents folded, punctuation
dropped, articles removed whether MovieLens moved them to the end or not, a trailing "(1995)"
dropped), and each catalogue title is indexed under every alias it carries in parentheses, e.g.
"Double vie de Véronique, La (Double Life of Veronique, The)".

A title scores the better of two similarities to the query, both 0-100:

- the whole strings' similarity (`rapidfuzz.fuzz.ratio`), for typos anywhere in a full title;
- a word score: each query word is matched to its closest title word (typos allowed), and the
  share of the query found is discounted when the title has many more words ("jedi" finds
  "Return of the Jedi" at 88, "fight club" finds "First Wives Club" at only 70).

Word similarities are computed once per distinct title word, so a query against 60,000 titles
takes a few milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from rapidfuzz import fuzz, process

# Letters that NFKD does not split into a base letter and an accent.
_UNDECOMPOSABLE = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l", "ð": "d", "þ": "th"}
)
# Leading articles that are dropped from titles and queries alike. Only English ones: a leading
# "Die" or "La" is as likely to be a word of the title ("Die Hard", "La Bamba").
_LEADING_ARTICLES = ("the ", "a ", "an ")
# Articles MovieLens moves to the end of a title ("Matrix, The", "Cérémonie, La").
_TRAILING_ARTICLE = re.compile(
    r",\s*(the|a|an|le|la|les|l'|l|el|los|las|il|lo|gli|i|die|der|das|den|det|de|het|un|une|una|o|os)\s*$"
)
_YEAR_IN_TITLE = re.compile(r"\s*\(\s*\d{4}\s*\)\s*$")
_PARENTHESES = re.compile(r"\(([^()]*)\)")
_AKA = re.compile(r"^\s*(a\.k\.a\.|aka)\s+")
_NON_WORD = re.compile(r"[\W_]+")
# A year at the end of a query, bare or in brackets: "heat 1995", "Heat (1995)", "heat, 1995".
_YEAR_HINT = re.compile(r"^(?P<text>.*?)[\s,]*[(\[]?\s*(?P<year>(18|19|20)\d{2})\s*[)\]]?\s*$")
# Words that neither need to be typed nor count against a long title.
# fmt: off
_FILLER_WORDS = frozenset({
    "the", "a", "an", "of", "and", "or", "in", "on", "at", "to", "for", "from", "with", "by", "part",
    "la", "le", "les", "l", "el", "los", "las", "lo", "il", "de", "del", "du", "des", "et", "y",
})
# fmt: on
# Sequel numbers are typed either way ("godfather 2", "Godfather: Part II"); "i", "v" and "x"
# are left alone ("I Shot Andy Warhol", "Malcolm X").
_ROMAN_NUMERALS = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}

# Below this, a query word is taken not to be that title word at all (ratio: "heat"/"heart" 89,
# "shawshenk"/"shawshank" 89, "up"/"cup" 80, "toy"/"story" 75, "cars"/"cats" 75).
_WORD_CUTOFF = 80.0
# Share of the word score kept however many more words the title has than the query.
_COVERAGE_FLOOR = 0.85

# With a cutoff of 80, every ML-100K title is found first from its lower-cased title (and year,
# where titles repeat), typos such as "shawshenk", "godfater" and "pulp fction" still match, and
# well-known titles missing from ML-100K ("matrix", "inception", "the dark knight", "fight club")
# match nothing.
DEFAULT_MIN_SCORE = 80.0


def fold(text: str) -> str:
    """Lower-case a text and strip its accents.

    Args:
        text: Any text.

    Returns:
        The text case-folded, with accents removed ("Cérémonie" -> "ceremonie").
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSABLE))
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def normalize_title(title: str) -> str:
    """The form a title or a query is compared in.

    Args:
        title: A title, as MovieLens writes it or as a person types it.

    Returns:
        The title folded, without a trailing "(1995)", without punctuation and without its
        article: "Matrix, The (1999)" and "the matrix" both give "matrix".
    """
    text = _YEAR_IN_TITLE.sub("", fold(title)).strip()
    text = _TRAILING_ARTICLE.sub("", text)
    words = _NON_WORD.sub(" ", text.replace("&", " and ")).split()
    text = " ".join(_ROMAN_NUMERALS.get(word, word) for word in words)
    for article in _LEADING_ARTICLES:
        if text.startswith(article) and len(text) > len(article):
            text = text[len(article) :]
            break
    return text


def _article(title: str) -> str:
    """The article a title or query starts with, or MovieLens moved to its end; "" if none."""
    text = _YEAR_IN_TITLE.sub("", fold(title)).strip()
    moved = _TRAILING_ARTICLE.search(text)
    if moved:
        return moved.group(1).rstrip("'")
    first = text.split(maxsplit=1)[0] if text else ""
    return first if f"{first} " in _LEADING_ARTICLES else ""


def title_aliases(title: str) -> list[str]:
    """Every normalised name a catalogue title can be found by.

    Args:
        title: A catalogue title, e.g. "Contempt (Mépris, Le)".

    Returns:
        Distinct normalised aliases, the main title first:
        ["contempt", "mepris", "le mepris", "contempt mepris le"].
    """
    folded = _YEAR_IN_TITLE.sub("", fold(title)).strip()
    # The title as typed in full, then without its parentheses, then each part in parentheses.
    parts = [_PARENTHESES.sub(" ", folded), *_PARENTHESES.findall(folded), folded]
    aliases: list[str] = []
    for part in parts:
        part = _AKA.sub("", part).strip()
        candidates = [part]
        moved = _TRAILING_ARTICLE.search(part)
        if moved and moved.group(1) not in ("the", "a", "an"):
            # "Cérémonie, La" is also typed "la ceremonie".
            candidates.append(f"{moved.group(1)} {part[: moved.start()]}")
        for candidate in candidates:
            alias = normalize_title(candidate)
            if alias and alias not in aliases:
                aliases.append(alias)
    return aliases


def _content_length(words: list[str]) -> int:
    """Characters in a title's words that a query is expected to contain."""
    return sum(len(word) for word in words if word not in _FILLER_WORDS) or sum(map(len, words))


@dataclass(frozen=True, slots=True)
class TitleMatch:
    """A catalogue movie matching a query; `score` is 0-100, 100 for an exact match."""

    movie_id: int
    title: str
    year: int | None
    score: float


class TitleIndex:
    """Fuzzy search over a catalogue's titles.

    Args:
        movie_ids: Catalogue movie ids.
        titles: Their titles, as stored ("Shawshank Redemption, The").
        years: Their release years; None or NaN where unknown.
        popularity: Optional tie-breaker, higher first (e.g. the number of ratings).
    """

    def __init__(
        self,
        movie_ids: ArrayLike,
        titles: Sequence[str],
        years: ArrayLike | Sequence[int | None],
        *,
        popularity: ArrayLike | None = None,
    ) -> None:
        self.movie_ids: NDArray[np.int64] = np.asarray(movie_ids, dtype=np.int64)
        self.titles: list[str] = [str(title) for title in titles]
        year_values = pd.to_numeric(pd.Series(np.asarray(years, dtype=object)), errors="coerce")
        self.years: NDArray[np.int64] = year_values.fillna(-1).to_numpy(dtype=np.int64)
        self.popularity: NDArray[np.float64] = (
            np.zeros(len(self.movie_ids))
            if popularity is None
            else np.nan_to_num(np.asarray(popularity, dtype=np.float64), nan=0.0)
        )
        sizes = {len(self.movie_ids), len(self.titles), len(self.years), len(self.popularity)}
        if len(sizes) != 1:
            raise ValueError("movie_ids, titles, years and popularity must have the same length")
        choices: list[str] = []
        choice_rows: list[int] = []
        for row, title in enumerate(self.titles):
            for alias in title_aliases(title):
                choices.append(alias)
                choice_rows.append(row)
        self._choices = choices
        self._choice_rows: NDArray[np.int64] = np.asarray(choice_rows, dtype=np.int64)
        self._aliases = frozenset(choices)
        self._articles = [_article(title) for title in self.titles]
        # For each distinct title word, the aliases containing it (CSR layout), so that a query
        # word is compared once with each distinct word, not once with each title.
        alias_words = [alias.split() for alias in choices]
        self._words = sorted({word for words in alias_words for word in words})
        position = {word: i for i, word in enumerate(self._words)}
        word_of_pair = np.fromiter(
            (position[word] for words in alias_words for word in words), dtype=np.int64
        )
        alias_of_pair = np.repeat(np.arange(len(choices)), [len(words) for words in alias_words])
        order = np.argsort(word_of_pair, kind="stable")
        self._word_aliases: NDArray[np.int64] = alias_of_pair[order]
        self._word_indptr: NDArray[np.int64] = np.searchsorted(
            word_of_pair[order], np.arange(len(self._words) + 1)
        ).astype(np.int64)
        self._content_length: NDArray[np.float64] = np.array(
            [_content_length(words) for words in alias_words], dtype=np.float64
        )

    @classmethod
    def from_movies(cls, movies: pd.DataFrame, ratings: pd.DataFrame | None = None) -> TitleIndex:
        """Index a `Dataset`'s movies, with the number of ratings as popularity.

        Args:
            movies: Frame with movie_id, title and year.
            ratings: Optional frame with movie_id; each movie's row count breaks ties.

        Returns:
            The index.
        """
        popularity = None
        if ratings is not None:
            counts = ratings["movie_id"].value_counts()
            popularity = movies["movie_id"].map(counts).fillna(0).to_numpy(dtype=np.float64)
        return cls(
            movies["movie_id"].to_numpy(),
            movies["title"].astype(str).tolist(),
            movies["year"].to_numpy(dtype=object),
            popularity=popularity,
        )

    def __len__(self) -> int:
        return len(self.movie_ids)

    def match(self, query: str, *, limit: int = 5, min_score: float = DEFAULT_MIN_SCORE) -> list[TitleMatch]:
        """Movies whose title best matches a query.

        Args:
            query: What a person typed: any case, with or without accents and articles,
                optionally ending in a year ("heat 1995", "Heat (1995)").
            limit: At most this many matches.
            min_score: Drop matches scoring below this (0-100).

        Returns:
            Best first: by score, then by closeness to the query's year, then by popularity.
            Empty when nothing scores `min_score` or more.
        """
        text, year = self._split_year(query)
        if not text or limit < 1 or not self._choices:
            return []
        scores = self._scores(text, min_score)
        best: dict[int, float] = {}
        for position in np.flatnonzero(scores >= min_score):
            row = int(self._choice_rows[position])
            best[row] = max(float(scores[position]), best.get(row, 0.0))
        article = _article(query)
        ranked = sorted(best, key=lambda row: self._rank_key(row, best[row], year, article))
        return [self._to_match(row, best[row]) for row in ranked[:limit]]

    def _scores(self, text: str, min_score: float) -> NDArray[np.float64]:
        """Score of every alias against a normalised query (see the module docstring)."""
        n_aliases = len(self._choices)
        whole = process.cdist(
            [text], self._choices, scorer=fuzz.ratio, score_cutoff=min_score, dtype=np.float32, workers=1
        )[0].astype(np.float64)
        words = list(dict.fromkeys(text.split()))
        content = [word for word in words if word not in _FILLER_WORDS] or words
        found = np.zeros(n_aliases)
        matched_length = np.zeros(n_aliases)
        for word in content:
            # Each alias's closest word to this query word.
            closest = np.zeros(n_aliases)
            for _, score, position in process.extract(
                word, self._words, scorer=fuzz.ratio, processor=None, limit=None, score_cutoff=_WORD_CUTOFF
            ):
                aliases = self._word_aliases[self._word_indptr[position] : self._word_indptr[position + 1]]
                closest[aliases] = np.maximum(closest[aliases], score)
            found += len(word) * closest
            matched_length += np.where(closest > 0, len(word), 0)
        coverage = np.minimum(matched_length / self._content_length, 1.0)
        by_words = found / sum(map(len, content)) * (_COVERAGE_FLOOR + (1 - _COVERAGE_FLOOR) * coverage)
        return np.maximum(whole, by_words)

    def _split_year(self, query: str) -> tuple[str, int | None]:
        text = normalize_title(query)
        hint = _YEAR_HINT.match(fold(query))
        if hint is None:
            return text, None
        rest = normalize_title(hint.group("text"))
        if not rest:
            return text, None  # "1984" is a title, not a year
        if text != rest and text in self._aliases:
            return text, None  # "blade runner 2049": the number belongs to the title
        return rest, int(hint.group("year"))

    def _rank_key(
        self, row: int, score: float, year: int | None, article: str
    ) -> tuple[float, int, bool, float, int]:
        # Scores within half a point are a tie. MovieLens years are often one off the release
        # year people remember; an unknown year ranks as one off. "the fear" prefers "Fear, The"
        # to "Fear".
        gap = 0
        if year is not None:
            gap = 1 if self.years[row] < 0 else min(abs(int(self.years[row]) - year), 2)
        return (-round(score), gap, self._articles[row] != article, -self.popularity[row], row)

    def _to_match(self, row: int, score: float) -> TitleMatch:
        year = int(self.years[row])
        return TitleMatch(
            movie_id=int(self.movie_ids[row]),
            title=self.titles[row],
            year=year if year >= 0 else None,
            score=float(score),
        )
