"""The filter language of the dashboard, ``ls --filter`` and ``wait --filter``.

A query is space-separated terms; a task matches when every term matches.

    flux                   bare word: case-insensitive substring of the id, label,
                           model, provider, kind, state or the provider's raw status
    provider:evo           field:value, case-insensitive substring of that field
    state:failed           state: (alias status:) see below
    -state:done            a leading '-' negates a term
    label:"batch 7"        quotes keep spaces ("..." or '...')

Fields: ``provider``, ``state``/``status``, ``model``, ``label``, ``kind``,
``id``/``task_id``, ``error``.  ``state:`` matches a group (``done``/``terminal``,
``active``, ``bad``), a state by prefix (``state:run`` is ``running``) or the
provider's raw status by prefix (``state:PROCESSED``, ``state:retry``).

Malformed terms never raise in ``compile_filter`` (the list narrows as the
user types): a field with an empty value (``provider:``) matches everything,
and ``word:thing`` with an unknown field is a bare word (ids may hold ':').
``problems(query)`` lists both kinds; ``compile_filter(q, strict=True)``
raises ``FilterError`` on them (for the command line).

The predicate runs over 100,000 tasks per keystroke: needles are lowercased
once, state/provider sets are precomputed, and answers for low-cardinality
fields (provider, model, kind, raw status) are remembered per distinct value,
so only ids and labels are lowercased per task.  ``refines(old, new)`` lets a
list filter only its previous matches while the query grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

from .model import BAD_ENDS, STATES, TERMINAL, Task

Predicate = Callable[[Task], bool]

FIELDS: dict[str, str] = {
    "provider": "provider",
    "state": "state",
    "status": "state",
    "model": "model",
    "label": "label",
    "kind": "kind",
    "id": "task_id",
    "task_id": "task_id",
    "error": "error",
}

GROUPS: dict[str, frozenset[str]] = {
    "done": TERMINAL,
    "terminal": TERMINAL,
    "active": frozenset(STATES) - TERMINAL,
    "bad": BAD_ENDS,
}


class FilterError(ValueError):
    """A malformed query (only raised with ``strict=True``)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One parsed term: ``field`` is None for a bare word."""

    value: str
    field: str | None = None
    negate: bool = False
    problem: str | None = None


def match_all(task: Task) -> bool:
    return True


# ---------------------------------------------------------------- parsing


def split_terms(query: str) -> list[tuple[str, bool]]:
    """Split on whitespace outside quotes: [(raw term without quotes, was_quoted_anywhere)].

    An unterminated quote runs to the end (the user is still typing).
    """
    out: list[tuple[str, bool]] = []
    buf: list[str] = []
    quote: str | None = None
    quoted = False
    started = False
    for ch in query:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf.append(ch)
        elif ch in "\"'":
            quote, quoted, started = ch, True, True
        elif ch.isspace():
            if started:
                out.append(("".join(buf), quoted))
            buf, quoted, started = [], False, False
        else:
            buf.append(ch)
            started = True
    if started:
        out.append(("".join(buf), quoted))
    return out


_FIELD = re.compile(r"^(-?)([A-Za-z_]+):(.*)$", re.S)


def parse(query: str) -> list[Term]:
    """The terms of ``query``, in order.  Never raises."""
    terms: list[Term] = []
    for raw, quoted in split_terms(query or ""):
        negate = False
        m = _FIELD.match(raw)
        if m:
            negate, name, value = bool(m.group(1)), m.group(2).lower(), m.group(3)
            if name in FIELDS:
                if value == "" and not quoted:
                    terms.append(Term("", FIELDS[name], negate, f"'{name}:' has no value (ignored)"))
                else:
                    terms.append(Term(value, FIELDS[name], negate))
                continue
            known = ", ".join(sorted(FIELDS))
            problem = f"unknown field '{name}:' (matched as a word; fields: {known})"
            terms.append(Term(raw[1:] if negate else raw, None, negate, problem))
            continue
        if raw.startswith("-") and len(raw) > 1:
            negate, raw = True, raw[1:]
        elif raw == "-":
            terms.append(Term("", None, False, "'-' alone negates nothing (ignored)"))
            continue
        terms.append(Term(raw, None, negate))
    return terms


def problems(query: str) -> list[str]:
    """What is wrong with ``query``, one message per malformed term (empty: fine)."""
    return [t.problem for t in parse(query) if t.problem]


def describe(query: str) -> str:
    """A short human reading of ``query`` (for the filter bar's tooltip and ``ls``)."""
    parts = []
    for t in parse(query):
        if t.value == "":
            continue
        what = f"{t.field} ~ {t.value!r}" if t.field else f"any field ~ {t.value!r}"
        if t.field == "state":
            what = f"state is {t.value!r}"
        parts.append(("not " if t.negate else "") + what)
    return " and ".join(parts) if parts else "all tasks"


def refines(old: str, new: str) -> bool:
    """True when every task matching ``new`` also matches ``old``.

    Lets a list narrow as the user types: when the query only grew, filter
    the previous matches instead of every task.  False means "not sure".
    """
    before, after = parse(old), parse(new)
    if len(after) < len(before):
        return False
    for a, b in zip(before, after):
        if a.value == "":  # ignored term: anything after it is at least as narrow
            continue
        if a == b:
            continue
        if a.field != b.field or a.negate or b.negate:
            return False
        x, y = a.value.lower(), b.value.lower()
        if a.field == "state":
            x, y = x.replace("-", "_"), y.replace("-", "_")
            if x in GROUPS or y in GROUPS or not y.startswith(x):
                return False
            if any(s.replace("_", "") == y and not s.startswith(x) for s in STATES):
                return False
        elif x not in y:
            return False
    return True


# ---------------------------------------------------------------- compiling


def compile_filter(query: str, *, strict: bool = False) -> Predicate:
    """``query`` -> a predicate on ``Task``.  The empty query matches every task.

    With ``strict=True`` a malformed term raises ``FilterError`` (one line).
    """
    terms = parse(query)
    if strict:
        found = [t.problem for t in terms if t.problem]
        if found:
            raise FilterError("; ".join(found))
    return compile_terms(terms)


def compile_terms(terms: list[Term]) -> Predicate:
    """Parsed terms -> a predicate that passes when every (non-empty) term does."""
    preds: list[Predicate] = []
    for term in terms:
        if term.value == "":
            continue
        pred = _term_predicate(term)
        if term.negate:
            pred = _negate(pred)
        preds.append(pred)
    return _all(preds)


# Terms on these fields read only a task's provider, state, provider_status,
# model, kind and label: few distinct combinations (labels name batches), so a
# list can answer them once per combination instead of once per task (TaskList).
CATEGORY_FIELDS = frozenset({"provider", "state", "model", "kind", "label"})


def _negate(pred: Predicate) -> Predicate:
    return lambda task: not pred(task)


def _all(preds: list[Predicate]) -> Predicate:
    if not preds:
        return match_all
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda task: a(task) and b(task)
    preds_t = tuple(preds)

    def match(task: Task) -> bool:
        for pred in preds_t:
            if not pred(task):
                return False
        return True

    return match


def _memo_contains(needle: str):
    """``f(value) -> bool``: is ``needle`` in ``value.lower()``, remembered per value.

    For low-cardinality fields (model, kind, raw status, provider) a dict
    lookup beats lowercasing the same few strings 100,000 times.
    """
    cache: dict[str | None, bool] = {None: False}
    get = cache.get

    def contains(value: str | None) -> bool:
        hit = get(value)
        if hit is None:
            hit = needle in value.lower()  # type: ignore[union-attr]
            if len(cache) < _MEMO_MAX:
                cache[value] = hit
        return hit

    return contains


def _contains(needle: str):
    """``f(value) -> bool`` for high-cardinality fields (ids, labels, errors)."""
    return lambda value: value is not None and needle in value.lower()


_MEMO_MAX = 4096
_FIELD_TESTS = {
    "provider": _memo_contains,
    "model": _memo_contains,
    "kind": _memo_contains,
    "task_id": _contains,
    "label": _contains,
    "error": _contains,
}


def _term_predicate(term: Term) -> Predicate:
    needle = term.value.lower()
    if term.field is None:
        return _word(needle)
    if term.field == "state":
        return _state(needle)
    test = _FIELD_TESTS[term.field](needle)
    name = term.field
    if name == "provider":
        return lambda task: test(task.provider)
    if name == "task_id":
        return lambda task: test(task.task_id)
    if name == "model":
        return lambda task: test(task.model)
    if name == "label":
        return lambda task: test(task.label)
    if name == "kind":
        return lambda task: test(task.kind)
    if name == "error":
        return lambda task: test(task.error)
    raise AssertionError(name)  # FIELDS and _FIELD_TESTS disagree


def _state(needle: str) -> Predicate:
    needle = needle.replace("-", "_")
    if needle in GROUPS:
        states = GROUPS[needle]
        return lambda task: task.state in states
    states = frozenset(s for s in STATES if s.startswith(needle) or s.replace("_", "") == needle)
    cache: dict[str | None, bool] = {None: False}
    get = cache.get

    def match(task: Task) -> bool:
        if task.state in states:
            return True
        status = task.provider_status
        hit = get(status)
        if hit is None:
            hit = status.lower().replace("-", "_").startswith(needle)  # type: ignore[union-attr]
            if len(cache) < _MEMO_MAX:
                cache[status] = hit
        return hit

    return match


def _word(needle: str) -> Predicate:
    """A bare word: substring of id, label, model, provider, kind, state or raw status."""
    states = frozenset(s for s in STATES if needle in s)
    in_common = _memo_contains(needle)  # provider, model, kind, raw status share one memo

    def match(task: Task) -> bool:
        label = task.label
        return (task.state in states
                or in_common(task.provider)
                or needle in task.task_id.lower()
                or (label is not None and needle in label.lower())
                or in_common(task.model)
                or in_common(task.kind)
                or in_common(task.provider_status))

    return match


# ---------------------------------------------------------------- closed fields


def check_query(query: str, providers: Iterable[str] | None = None) -> list[str]:
    """Warnings about values no task can have, on the closed fields.

    ``state:`` takes a state, a group or a prefix of one (or the provider's raw
    status, which is open: only a value close to a known state is flagged, as
    ``state:faild``); ``provider:`` a substring of a known provider (``providers``:
    by default the five and the catalogue's; the caller adds the ones its config
    declares).  Each warning says "did you mean" when a known value is close.
    Never raises.
    """
    import difflib

    if providers is None:
        from .providers import known_names

        providers = known_names()
    names = list(dict.fromkeys(providers))

    out: list[str] = []
    states = [s for s in STATES] + sorted(GROUPS)
    for term in parse(query or ""):
        if term.field is None or term.value == "":
            continue
        value = term.value.lower()
        sign = "-" if term.negate else ""
        if term.field == "state":
            needle = value.replace("-", "_")
            if needle in GROUPS or any(s.startswith(needle) or s.replace("_", "") == needle for s in STATES):
                continue
            close = difflib.get_close_matches(needle, states, n=1, cutoff=0.75)
            if close:
                out.append(f"'{sign}state:{term.value}' matches no state; did you mean '{close[0]}'?")
        elif term.field == "provider":
            if any(value in p for p in names):
                continue
            close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (providers: {', '.join(names)})"
            out.append(f"'{sign}provider:{term.value}' matches no provider{hint}")
    return out


# ---------------------------------------------------------------- planning


def plan_query(query: str) -> tuple[list[tuple[str, bool]], Predicate | None, Predicate | None]:
    """How a list answers ``query`` fastest in memory: (needles for a row's haystack,
    a predicate of the terms on category fields, a predicate of the other field terms);
    a None predicate has nothing to test.  The needles are the bare words (with their
    negation) plus the values of ``id:`` terms (a task whose id holds the value has it
    in its haystack too; the predicate then checks the id itself)."""
    words: list[tuple[str, bool]] = []
    category: list[Term] = []
    other: list[Term] = []
    for term in parse(query):
        if term.value == "":
            continue
        if term.field is None and "\n" not in term.value:
            words.append((term.value.lower(), term.negate))
        elif term.field in CATEGORY_FIELDS:
            category.append(term)
        else:
            other.append(term)
            if term.field == "task_id" and not term.negate and "\n" not in term.value:
                words.append((term.value.lower(), False))
    return (words, compile_terms(category) if category else None,
            compile_terms(other) if other else None)


# ---------------------------------------------------------------- SQL


class Where(NamedTuple):
    """A query compiled for a store's SQL: ``sql`` (a condition on table ``tasks``, with
    ``?`` placeholders) and its ``params``; ``residual``, when not None, is a predicate
    the rows the SQL selects must also pass (the SQL then selects a superset)."""

    sql: str
    params: list
    residual: Predicate | None
    # lowercase needles every selected row holds in its ``hay`` (positive bare words that
    # are in no state's name, and ``id:`` values): what a trigram index may answer first
    # (Store.window_head)
    words: tuple[str, ...] = ()


DIALECTS = ("sqlite", "postgres")
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def hay(task: Task) -> str:
    """What a bare word is looked for in (the store keeps it in column ``hay``): the id,
    label, model, provider, kind and the provider's status, lowercased by Python, one
    per line (a word has no line break: it matches inside one field, as ``_word``)."""
    return "\n".join((task.provider, task.task_id, task.label or "", task.model or "", task.kind or "",
                      task.provider_status or "")).lower()


def sql_match(kind: int, value: str | None, needle: str) -> bool:
    """What SQLite calls for text that is not plain ASCII (registered on the store's
    connections as ``tt_match``): Python's own lowercase, as the predicate does.
    kind 0: ``needle`` is in ``value``; 1: the provider status starts with it."""
    if value is None:
        return False
    low = value.lower()
    if kind == 1:
        return low.replace("-", "_").startswith(needle)
    return needle in low


def compile_sql(query: str, dialect: str = "sqlite", *, use_hay: bool = True, hay_ready: bool = False) -> Where:
    """``query`` -> a condition on the ``tasks`` table selecting exactly the rows the
    predicate of ``compile_filter(query)`` passes.

    Category terms (provider/state/model/kind/label), ``id:``, ``error:`` and bare words
    all become SQL.  Substrings are case-insensitive as in Python: on plain-ASCII text the
    SQL's own lowercase is Python's, so it decides; text holding anything else goes to
    Python (SQLite: the ``tt_match`` function of the store's connection; PostgreSQL,
    whose lowercase follows its locale: the row is kept as a candidate and ``residual``,
    the Python predicate, decides).  A bare word reads the row's ``hay`` column (``hay()``,
    written with the row) where it is set; ``use_hay=False`` for a table without it.

    ``hay_ready``: every tracked row has its ``hay`` (the store checked).  Then on
    PostgreSQL a bare word reads only ``hay`` and ``id:`` only its second line, the id
    (provider names and ids are printable, so neither holds a line break), both in
    Python's lowercase: exact, and such a query needs no residual."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    pg = dialect == "postgres"
    params: list = []
    unsure = [False]

    def text(col: str, needle: str, kind: int) -> str:
        """SQL true when column ``col`` matches ``needle`` (kind 0: holds it; 1: status prefix)."""
        if pg:
            unsure[0] = True
            low = f"translate({col}, '{_UPPER}', '{_UPPER.lower()}')"
            odd = f"octet_length({col}) <> char_length({col})"
            if kind == 1:
                test = f"starts_with(replace({low}, '-', '_'), ?)"
            else:
                test = f"strpos({low}, ?) > 0"
            params.append(needle)
            return f"(CASE WHEN {col} IS NULL THEN FALSE WHEN {odd} THEN NULL ELSE {test} END)"
        odd = f"length(CAST({col} AS BLOB)) <> length({col})"
        if kind == 1:
            test = f"substr(replace(lower({col}), '-', '_'), 1, {len(needle)}) = ?"
        else:
            test = f"instr(lower({col}), ?) > 0"
        params.extend((kind, needle, needle))
        return (f"(CASE WHEN {col} IS NULL THEN 0 WHEN {odd} THEN tt_match(?, {col}, ?)"
                f" ELSE {test} END)")

    def states(names: Iterable[str]) -> str:
        wanted = set(names)
        names = [s for s in STATES if s in wanted]
        if not names:
            return "FALSE"
        return "state IN (" + ", ".join(f"'{s}'" for s in names) + ")"

    columns = {"provider": "provider", "task_id": "task_id", "model": "model", "label": "label",
               "kind": "kind", "error": "error"}
    parts: list[str] = []
    words: list[str] = []
    exact_hay = pg and use_hay and hay_ready
    for term in parse(query):
        if term.value == "":
            continue
        needle = term.value.lower()
        # (a bare word inside a state's name also matches by the state, which hay does not hold)
        if (not term.negate and term.field in (None, "task_id") and "\n" not in needle
                and not (term.field is None and any(needle in s for s in STATES))):
            words.append(needle)
        if term.field is None:
            cols = ("provider", "task_id", "label", "model", "kind", "provider_status")
            if exact_hay and "\n" not in needle and "\x00" not in needle:
                params.append(needle)
                fields = "strpos(hay, ?) > 0"
            elif use_hay and "\n" not in needle:  # the column hay (Python's lowercase) when the row has it
                params.append(needle)  # (params in the order their ? appear)
                look = "strpos(hay, ?) > 0" if pg else "instr(hay, ?) > 0"
                fields = " OR ".join(text(col, needle, 0) for col in cols)
                fields = f"CASE WHEN hay IS NOT NULL THEN {look} ELSE ({fields}) END"
            else:
                fields = " OR ".join(text(col, needle, 0) for col in cols)
            expr = f"{states(s for s in STATES if needle in s)} OR ({fields})"
        elif term.field == "state":
            needle = needle.replace("-", "_")
            if needle in GROUPS:
                expr = states(GROUPS[needle])
            else:
                expr = states(s for s in STATES if s.startswith(needle) or s.replace("_", "") == needle)
                expr += " OR " + text("provider_status", needle, 1)
        elif term.field == "task_id" and exact_hay and "\n" not in needle and "\x00" not in needle:
            params.append(needle)  # hay's second line is the id (tui.filter.hay)
            expr = "strpos(split_part(hay, chr(10), 2), ?) > 0"
        else:
            expr = text(columns[term.field], needle, 0)
        if term.negate:
            expr = f"NOT ({expr})"
        # NULL (PostgreSQL: not sure on non-ASCII text) keeps the row for the residual
        parts.append(f"COALESCE(({expr}), TRUE)" if pg else f"({expr})")
    sql = " AND ".join(parts) if parts else "TRUE"
    residual = compile_filter(query) if unsure[0] else None
    return Where(sql, params, residual, tuple(words))
