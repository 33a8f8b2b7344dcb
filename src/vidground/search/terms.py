"""What a search query is made of: the words and character runs looked up in the index.

Both stores match the same terms the same way, as case-insensitive substrings of the indexed
text (SQLite: FTS5's trigram tokenizer; PostgreSQL: ``LIKE`` over a ``pg_trgm`` index):

* Latin (and other spaced) words, lower-cased, common words dropped, a plural or ``-ing``/
  ``-ed`` ending cut (``opens`` finds "open", "opened", "opening");
* Chinese, Japanese and Korean runs cut into overlapping three-character pieces (``红色方块``:
  ``红色方``, ``色方块``), so a phrase finds text sharing part of it; a run of one or two
  characters is kept whole (:data:`SHORT` terms: matched by a scan, not the index).

A query is refused (:class:`~vidground.errors.QueryError`) when empty, longer than
:data:`MAX_QUERY_CHARS`, or made only of common words.

>>> terms("When does the red square appear?")
['red', 'square', 'appear']
>>> terms("红色方块")
['红色方', '色方块']
"""

from __future__ import annotations

import re

from ..errors import QueryError

#: The longest query accepted (characters).
MAX_QUERY_CHARS = 500
#: The most terms one query looks up (the rest are ignored).
MAX_TERMS = 32
#: Terms shorter than this are not in the trigram index: they are matched by a scan.
SHORT = 3

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_RUNS = re.compile(f"[{_CJK}]+|[^{_CJK}]+")
_WORD = re.compile(r"[^\W_]+")
_CJK_RUN = re.compile(f"[{_CJK}]+")
STOPWORDS = frozenset(("a", "an", "and", "any", "are", "as", "at", "be", "been", "being", "but",
    "by", "can", "could", "did", "do", "does", "during", "for", "from", "had", "has", "have",
    "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on",
    "or", "our", "she", "so", "some", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "to", "up", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "show",
    "shows", "shown", "find", "video", "videos", "moment", "happen", "happens"))


def check_query(query: str) -> str:
    """``query`` stripped, or :class:`QueryError` saying what to change."""
    if not isinstance(query, str) or not query.strip():
        raise QueryError("the search query is empty: give the words to look for.")
    if "\x00" in query:
        raise QueryError("the search query contains a NUL character; remove it.")
    text = query.strip()
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the search query is {len(text)} characters long; keep it within "
                         f"{MAX_QUERY_CHARS}.")
    return text


def _stem(word: str) -> str:
    for suffix, keep in (("ing", 4), ("ed", 4), ("es", 3), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            return word[:-len(suffix)]
    return word


def terms(query: str) -> list[str]:
    """The terms :func:`check_query`'s ``query`` is looked up by (see the module docstring)."""
    text = check_query(query).lower()
    found: list[str] = []
    for token in _WORD.findall(text):
        for run in _RUNS.findall(token):
            if _CJK_RUN.fullmatch(run):
                pieces = [run] if len(run) < SHORT else \
                    [run[i:i + SHORT] for i in range(len(run) - SHORT + 1)]
                found.extend(pieces)
            elif run not in STOPWORDS:
                found.append(_stem(run))
    unique = list(dict.fromkeys(t for t in found if t))[:MAX_TERMS]
    if not unique:
        raise QueryError(f"the search query {text[:80]!r} has only common words; name what "
                         "to look for (an object, an action, a word on screen).")
    return unique


def long_terms(found: list[str]) -> list[str]:
    """The terms the trigram indexes can look up; when there are none, the short ones."""
    return [t for t in found if len(t) >= SHORT] or found
