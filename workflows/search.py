"""What a search box term is (ARCHITECTURE: exact, indexed lookups, never ILIKE '%…%').

A reviewer types an ID number, a certificate number, a phone number or a name; each kind
maps to its own indexed predicate in the view that searches.
"""

from __future__ import annotations

import re
from enum import Enum

from sqlalchemy import Boolean, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

MAX_TERM = 50


class TermKind(Enum):
    certificate_number = "certificate_number"
    id_number = "id_number"
    phone = "phone"
    code = "code"
    text = "text"
    empty = "empty"


_ID = re.compile(r"^\d{17}[\dX]$")
_CERT = re.compile(r"^\d{15}$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_CODE = re.compile(r"^[A-Z0-9-]{4,32}$")


def classify(raw: str | None) -> tuple[TermKind, str]:
    """(kind, normalised term). Over-long input and bare wildcards search for nothing."""
    term = (raw or "").strip().replace("\u3000", " ")
    term = term.translate(str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX"))
    term = term.strip("%_ ")
    if not term or len(term) > MAX_TERM:
        return TermKind.empty, ""
    upper = term.upper()
    compact = re.sub(r"\s+", "", upper)  # "370102 19900101 0012" is still an ID number
    if _ID.match(compact):
        return TermKind.id_number, compact
    if _CERT.match(compact):
        return TermKind.certificate_number, compact
    if _PHONE.match(compact):
        return TermKind.phone, compact
    if _CODE.match(upper) and any(ch.isdigit() for ch in upper):
        return TermKind.code, upper
    return TermKind.text, term


class _StartsWith(ColumnElement):
    """``column`` begins with ``term``, in the form each database answers from the column's
    b-tree index: GLOB 'term*' on SQLite (its LIKE is case-insensitive and cannot use a
    BINARY index), LIKE 'term%' elsewhere (PostgreSQL: a text_pattern_ops index).

    Both patterns are bound parameters known to SQLAlchemy's cache key (``_traverse_internals``),
    so a search's statement is compiled once and reused for every term (issue 16 "Served": a name
    search compiled its two statements anew on every request, 5 ms of a worker's CPU)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a condition in WHERE, not a value to compare with 1
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("like", InternalTraversal.dp_clauseelement),
                           ("glob", InternalTraversal.dp_clauseelement)]

    def __init__(self, column, term: str):
        self.column = column
        self.like = literal(prefix_pattern(term))
        self.glob = literal("".join(f"[{ch}]" if ch in "*?[" else ch for ch in term) + "*")


@compiles(_StartsWith)
def _starts_with_like(element, compiler, **kw):
    return compiler.process(element.column.like(element.like, escape="\\"), **kw)


@compiles(_StartsWith, "sqlite")
def _starts_with_glob(element, compiler, **kw):
    return compiler.process(element.column.op("GLOB")(element.glob), **kw)


def starts_with(column, term: str):
    """The one prefix search of every list (names, batch names, usernames): indexed on both databases."""
    return _StartsWith(column, term)


def prefix_pattern(term: str) -> str:
    """A LIKE prefix pattern with the user's wildcards escaped (index-friendly 'term%')."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
