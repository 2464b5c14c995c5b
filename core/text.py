"""What text may be stored, and how text is made safe to hand to a spreadsheet.

Every database the product supports must be able to store what a client sends, or one request
can block every write after it: PostgreSQL refuses a NUL character (U+0000) in a text column,
and no driver can encode a lone surrogate (U+D800–U+DFFF, which a JSON ``\\ud800`` escape can
produce) as UTF-8. The rules, used by the API at its edge and by the prediction log's writer:

- **refused** (the API answers 422, the log writer keeps the row aside as refused): a NUL, a
  lone surrogate, a text longer than its column. These change what the client meant (a user
  id that keeps a canary split sticky), so they are never silently rewritten;
- **neutralised** (stored with U+FFFD in place of each offending character, cut to length):
  free text the service writes itself, such as an error message that may quote its input;
- **stored as sent**: everything else, control characters and formula characters included;
  they are made harmless where they are dangerous, when exported (:func:`spreadsheet_safe`).
"""

from __future__ import annotations

from core.errors import BadInput

REPLACEMENT = "\ufffd"
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (tab
# and carriage return: a cell can start with them and a formula after them, OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def unstorable(text: str, max_length: int | None = None) -> str | None:
    """Why ``text`` cannot be stored in every supported database, or None when it can."""
    if max_length is not None and len(text) > max_length:
        return f"is {len(text)} characters long; at most {max_length} are kept"
    if "\x00" in text:
        return "contains a NUL character (U+0000), which the database cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (U+D800 to U+DFFF), which is not valid Unicode"
    return None


def check_storable(text: str, what: str, max_length: int | None = None) -> str:
    """``text`` unchanged, or :class:`BadInput` naming ``what`` and the problem."""
    problem = unstorable(text, max_length)
    if problem is not None:
        raise BadInput(f"{what} {problem}")
    return text


def neutralised(text: str, max_length: int | None = None) -> str:
    """``text`` with NULs and lone surrogates replaced by U+FFFD, cut to ``max_length``."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii():
        text = "".join(REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in text)
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string starting with a formula
    character gets a leading apostrophe; other values (numbers, None) are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
