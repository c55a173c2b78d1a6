"""The text syntax of the search box and ``q=``: weighted sums of terms.

Grammar (whitespace separates tokens; ``+`` and ``-`` are operators only at the start of a token, so ``t-shirt``
stays one word)::

    query   := ['+' | '-'] term (('+' | '-') term)*
    term    := [weight '*'] atom+
    atom    := word | "quoted phrase" | image:<id> | http(s)://url | field:word | field:"quoted phrase"
    field   := title | by | tag | file | desc | text | auto

Consecutive words form one text term (``red circle`` is a single phrase, not two terms). ``image:123`` and URLs
must stand alone in their term. A field atom becomes a term of its own with its term's sign and weight: the
keyword side must find it in that field (``by:"Michelle Spencer"``), or, with ``-``, must not. Examples:
``beach + 0.5 * sunset - people``, ``image:123 - snow``, ``"a red circle" - circle``,
``forest by:"Michelle Spencer"``, ``file:IMG_2041``, ``red circle -tag:demo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from images.keyword_query import FIELD_COLUMNS

from .types import MAX_QUERY_CHARS, MAX_TERM_CHARS, MAX_TERMS, MAX_WEIGHT, QueryError, QueryTerm

FIELDS_TEXT = ", ".join(f"{name}:" for name in FIELD_COLUMNS)
_NOT_FIELDS = ("image", "url", "http", "https")


@dataclass(frozen=True)
class _Token:
    kind: str  # "op", "star", "word", "phrase", "field"
    value: str
    pos: int  # 1-based character position, for messages
    field: str = ""


def query_parse(*, text: str) -> tuple[QueryTerm, ...]:
    """Parse ``text`` into weighted terms; empty or blank text gives ``()``.

    Raises ``QueryError`` with a message that names the problem and its character position. Pure function.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"The query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}.")
    return _Parser(_tokenize(text)).parse()


def terms_validate(*, terms: tuple[QueryTerm, ...]) -> None:
    """Check a complete term list (from the parser, JSON or the Python API) before anything is encoded.

    Raises ``QueryError`` when there is no term, too many, a bad weight, or no positive term at all.
    """
    if not terms:
        raise QueryError("Enter a query: describe an image, or add a picture to search with.")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"The query has {len(terms)} terms; the limit is {MAX_TERMS}.")
    for term in terms:
        _check_weight(term.weight, term.describe())
        if term.kind in ("text", "field") and not term.text.strip():
            raise QueryError("A text term is empty.")
        if term.kind == "field" and term.field not in FIELD_COLUMNS:
            raise QueryError(f"Unknown field {term.field[:20]!r}; fields: {FIELDS_TEXT}.")
        if term.kind in ("text", "field") and len(term.text) > MAX_TERM_CHARS:
            raise QueryError(f"The term {term.text[:30]!r}… is longer than {MAX_TERM_CHARS} characters.")
    if not any(term.weight > 0 for term in terms):
        raise QueryError("The query has only negative terms; add something to search for, e.g. `beach - people`.")


def _check_weight(weight: float, label: str) -> None:
    if not math.isfinite(weight):
        raise QueryError(f"The weight of {label} is not a finite number.")
    if weight == 0:
        raise QueryError(f"The weight of {label} is 0, which ignores the term; remove it or use another weight.")
    if abs(weight) > MAX_WEIGHT:
        raise QueryError(
            f"The weight of {label} is {weight:g}; weights must be between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}."
        )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end == -1:
                raise QueryError(f'The quoted phrase that starts at character {i + 1} has no closing quote (").')
            tokens.append(_Token("phrase", " ".join(text[i + 1 : end].split()), i + 1))
            i = end + 1
        elif char in "+-":
            tokens.append(_Token("op", char, i + 1))
            i += 1
        elif char == "*":
            tokens.append(_Token("star", char, i + 1))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '"*':
                i += 1
            token = _Token("word", text[start:i], start + 1)
            field = _field_name(token)
            if field is not None:
                value = token.value[len(field) + 1 :]
                if not value and i < n and text[i] == '"':
                    end = text.find('"', i + 1)
                    if end == -1:
                        raise QueryError(f"The quoted phrase after {field}: at character {i + 1} has no closing quote.")
                    value, i = " ".join(text[i + 1 : end].split()), end + 1
                if not value:
                    raise QueryError(
                        f'{field}: at character {start + 1} needs a word or a "quoted phrase", '
                        f'as in by:"Michelle Spencer" or file:IMG_2041.'
                    )
                token = _Token("field", value, start + 1, field=field)
            tokens.append(token)
        if len(tokens) > 4 * MAX_TERMS + MAX_TERM_CHARS:  # hostile input: stop long before the term cap bites
            raise QueryError(f"The query has too many parts; the limit is {MAX_TERMS} terms.")
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.terms: list[QueryTerm] = []
        self._reset(sign=1.0, at=None)

    def _reset(self, *, sign: float, at: _Token | None) -> None:
        self.sign = sign
        self.sign_token = at
        self.weight: float | None = None
        self.atoms: list[_Token] = []

    def parse(self) -> tuple[QueryTerm, ...]:
        for token in self.tokens:
            if token.kind == "op":
                self._operator(token)
            elif token.kind == "star":
                self._star(token)
            else:
                self.atoms.append(token)
        if self.sign_token is not None or self.weight is not None or self.atoms:
            if not self.atoms:
                where = self.sign_token or self.tokens[-1]
                raise QueryError(f"The query ends with '{where.value}' at character {where.pos}; add a term after it.")
            self._flush()
        return tuple(self.terms)

    def _operator(self, token: _Token) -> None:
        if self.atoms:
            self._flush()
        elif self.weight is not None:
            raise QueryError(f"The weight before character {token.pos} has no term after it.")
        elif self.sign_token is not None:
            raise QueryError(
                f"Two operators in a row ('{self.sign_token.value}' and '{token.value}') at character {token.pos}."
            )
        self._reset(sign=1.0 if token.value == "+" else -1.0, at=token)

    def _star(self, token: _Token) -> None:
        example = "as in `0.5 * sunset`"
        if len(self.atoms) != 1 or self.weight is not None or self.atoms[0].kind != "word":
            raise QueryError(f"'*' at character {token.pos} must follow a single weight, {example}.")
        try:
            weight = float(self.atoms[0].value)
        except ValueError:
            raise QueryError(
                f"'*' at character {token.pos} follows {self.atoms[0].value!r}, which is not a number; {example}."
            ) from None
        self.weight = weight
        self.atoms = []

    def _flush(self) -> None:
        if len(self.terms) >= MAX_TERMS:
            raise QueryError(f"The query has more than {MAX_TERMS} terms; the limit is {MAX_TERMS}.")
        weight = self.sign * (1.0 if self.weight is None else self.weight)
        fields = [a for a in self.atoms if a.kind == "field"]
        self.atoms = [a for a in self.atoms if a.kind != "field"]
        for atom in fields:
            if len(self.terms) >= MAX_TERMS:
                raise QueryError(f"The query has more than {MAX_TERMS} terms; the limit is {MAX_TERMS}.")
            if len(atom.value) > MAX_TERM_CHARS:
                raise QueryError(f"The {atom.field}: value at character {atom.pos} is longer than {MAX_TERM_CHARS}.")
            term = QueryTerm(kind="field", field=atom.field, text=atom.value, weight=weight)
            _check_weight(weight, term.describe())
            self.terms.append(term)
        if not self.atoms:
            self._reset(sign=1.0, at=None)
            return
        first = self.atoms[0]
        special = [a for a in self.atoms if a.kind == "word" and _special_kind(a.value)]
        if special:
            if len(self.atoms) > 1:
                raise QueryError(
                    f"{special[0].value[:60]!r} at character {special[0].pos} must stand alone in its term; "
                    "put + or - between it and the words around it."
                )
            term = _special_term(first, weight)
        else:
            text = " ".join(a.value for a in self.atoms).strip()
            if not text:
                raise QueryError(f"The quoted phrase at character {first.pos} is empty.")
            if len(text) > MAX_TERM_CHARS:
                raise QueryError(
                    f"The term at character {first.pos} is {len(text)} characters long; the limit is {MAX_TERM_CHARS}."
                )
            term = QueryTerm(kind="text", text=text, weight=weight)
        _check_weight(weight, term.describe())
        self.terms.append(term)
        self._reset(sign=1.0, at=None)


def _field_name(token: _Token) -> str | None:
    """The field of a ``name:value`` word (``by:Spencer``, or ``by:`` before a quote), ``None`` for other words;
    an unknown alphabetic name is refused so a typo (``auther:``) never searches for the literal word."""
    name, colon, _ = token.value.partition(":")
    if not colon or not name.isalpha() or not name.isascii():
        return None
    if name.lower() in FIELD_COLUMNS:
        return name.lower()
    if name.lower() in _NOT_FIELDS or len(name) > 12:
        return None
    raise QueryError(
        f"Unknown field {name[:12]!r}: at character {token.pos}; fields: {FIELDS_TEXT} "
        f'(put the word in quotes, "{token.value[:30]}", to search for it as written).'
    )


def _special_kind(word: str) -> str | None:
    lowered = word.lower()
    if lowered.startswith("image:"):
        return "image_id"
    if lowered.startswith(("http://", "https://", "url:")):
        return "url"
    return None


def _special_term(token: _Token, weight: float) -> QueryTerm:
    if _special_kind(token.value) == "image_id":
        raw = token.value[len("image:") :]
        if not raw.isdigit() or not raw.isascii() or len(raw) > 18:
            raise QueryError(
                f"image: at character {token.pos} needs a numeric image id, as in `image:123` (got {raw[:30]!r})."
            )
        return QueryTerm(kind="image_id", image_id=int(raw), weight=weight)
    url = token.value[len("url:") :] if token.value.lower().startswith("url:") else token.value
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
        raise QueryError(f"The image URL at character {token.pos} must start with http:// or https://.")
    return QueryTerm(kind="url", url=url, weight=weight)
