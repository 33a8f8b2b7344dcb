"""Does a line OCR read hold the phrase asked about? Fuzzy, so OCR slips (``FAILÉD``,
``PAYMENTFAILED``, ``0RDER``) still match, for English and Chinese alike.

Both sides are normalised (NFKC, accents dropped, case folded, spaces and punctuation removed;
Chinese has no spaces to lose), then the phrase is aligned to its best place in the line
(:func:`rapidfuzz.fuzz.partial_ratio`). A phrase of up to :data:`EXACT_UP_TO` characters must
appear exactly (one wrong character in ``支付失败`` is another word); longer ones may differ in
about one character in six.

>>> phrase_score("PAYMENT FAILED", "Payment FAILÉD!") >= MATCH_SCORE
True
>>> phrase_score("支付失败", "订单支付失败，请重试") >= MATCH_SCORE
True
>>> phrase_score("支付失败", "支付成功") >= MATCH_SCORE
False
"""

from __future__ import annotations

import re
import unicodedata

#: Score (0..100) at or above which a line holds the phrase.
MATCH_SCORE = 84.0
#: Phrases this short (normalised characters) must appear exactly.
EXACT_UP_TO = 4

_DROP = re.compile(r"[\W_]+", re.UNICODE)
# Opening and closing quotes people put around a phrase: ASCII, typographic, CJK.
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|「([^」]+)」|『([^』]+)』|‘([^’]+)’|"
                     r"(?:(?<=\s)|^)'([^']+)'(?=[\s?.,!;:]|$)")


def normalize(text: str) -> str:
    """``text`` as compared: NFKC, accents dropped, case folded, no spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _DROP.sub("", unicodedata.normalize("NFKC", plain).casefold())


def phrase_score(phrase: str, line: str) -> float:
    """How well ``line`` holds ``phrase``: 100 = exactly (after :func:`normalize`), 0 = not."""
    want, have = normalize(phrase), normalize(line)
    if not want or not have:
        return 0.0
    if want in have:
        return 100.0
    if len(want) <= EXACT_UP_TO:
        return 0.0
    from rapidfuzz import fuzz

    if len(have) < len(want):
        # OCR cut the phrase (or split it over lines): score what is there, scaled by coverage
        return float(fuzz.ratio(want, have))
    return float(fuzz.partial_ratio(want, have))


def matches(phrase: str, line: str, threshold: float = MATCH_SCORE) -> bool:
    return phrase_score(phrase, line) >= threshold


def quoted_phrases(query: str) -> list[str]:
    """The phrases a question quotes, in order: ``When does "PAYMENT FAILED" appear?`` gives
    ``["PAYMENT FAILED"]``; ``“支付失败”什么时候出现？`` gives ``["支付失败"]``.

    >>> quoted_phrases('When does "PAYMENT FAILED" appear on screen?')
    ['PAYMENT FAILED']
    >>> quoted_phrases("“支付失败”什么时候出现？")
    ['支付失败']
    >>> quoted_phrases("when does the dog's ball fly")
    []
    """
    found: list[str] = []
    for match in _QUOTED.finditer(query):
        text = next(g for g in match.groups() if g is not None).strip()
        if normalize(text) and text not in found:
            found.append(text)
    return found
