"""Which output tokens carry content (names, numbers, number words), and which of them the
question already shows: the word rules the content-aware criteria look at (`_tolerance.py`).
Words are read on the whole output's text, in any script; what the rules cannot read counts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["content_mask", "word_masks", "words_of"]

_FUNCTION_WORDS = frozenset(
    "a an and are as at be by for from has have he her his i in is it its of on or our she so that the "
    "their them there they this to was we were which who will with you your yes no".split())
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion trillion dozen first second third fourth fifth sixth seventh eighth "
    "ninth tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
    "nineteenth twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth "
    "hundredth thousandth millionth".split())
# a word: letters and digits of any script (and U+FFFD, a piece of a character split across
# tokens), joined across one inner separator ("4,417", "2024-03-05", "Jean-Luc" are one word each)
_CH = r"(?:[^\W_]|\ufffd)"
_WORD = re.compile(rf"{_CH}+(?:[.,:/-]{_CH}+)*")
_SEP = re.compile(r"[.,:/-]")


def _words(pieces: Sequence[str]) -> list[tuple[str, range]]:
    """The output's words (`_WORD`, on the output's text) with the indices of the tokens each
    overlaps."""
    ends = np.cumsum([len(p) for p in pieces], dtype=int)
    starts = ends - np.array([len(p) for p in pieces], dtype=int)
    return [(m.group(), range(int(np.searchsorted(ends, m.start(), side="right")),
                              int(np.searchsorted(starts, m.end(), side="left"))))
            for m in _WORD.finditer("".join(pieces))]


def _number_word(part: str) -> bool:
    part = part.lower()
    return part in _NUMBER_WORDS or (part.endswith("s") and part[:-1] in _NUMBER_WORDS)


def _is_content(word: str) -> bool:
    """Digits, names (a part with a capital first letter, not a function word: "mid-March"),
    number words, and what this test cannot read: any letter without case (CJK, Arabic, …) or an
    undecodable piece."""
    if any(ch.isdigit() or ch == "\ufffd" or (ch.isalpha() and ch.lower() == ch.upper()) for ch in word):
        return True
    for part in _SEP.split(word):
        letters = "".join(ch for ch in part if ch.isalpha())
        if (letters[:1].isupper() and letters.lower() not in _FUNCTION_WORDS) or _number_word(part):
            return True
    return False


def _excusable(word: str) -> bool:
    """Whether the question showing `word` excuses it: not a number word, not a number of fewer
    than three digits (cheap to list in a question, unlike a name or a longer number), not an
    undecodable piece (its text is not the character's)."""
    if "\ufffd" in word or any(_number_word(p) for p in _SEP.split(word)):
        return False
    digits = sum(ch.isdigit() for ch in word)
    return digits == 0 or digits >= 3


@functools.lru_cache(maxsize=256)
def word_masks(pieces: tuple[str, ...], query_words: frozenset[str]) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """(content, new content) of the output's tokens: see `content_mask`, `TokenView.new_content`."""
    content, new = [False] * len(pieces), [False] * len(pieces)
    for word, idx in _words(pieces):
        if _is_content(word):
            fresh = not (word.lower() in query_words and _excusable(word))
            for i in idx:
                content[i] = True
                new[i] = new[i] or fresh
    return tuple(content), tuple(new)


def words_of(text: str) -> frozenset[str]:
    """The words of `text` as `TokenView.new_content` compares them: `_WORD`, lower case
    ("4,417" is one word, and "lab 4" does not contain it)."""
    return frozenset(m.lower() for m in _WORD.findall(text))


def content_mask(pieces: tuple[str, ...]) -> np.ndarray:
    """Which output tokens carry content: digits, names (capitalised words that are not function
    words) and number words, with every sub-word piece of such a word. Style words ("keep",
    "annual") are not content; that is the point (docs/calibration.md)."""
    return np.array(word_masks(tuple(pieces), frozenset())[0], dtype=bool)
