"""The machinery every KPI shares: argument domains, validation, safe division.

A KPI is a plain numpy function decorated with :func:`kpi`, which declares
the *domain* of each argument (a count, an amount of money, a fraction ...).
The decorator

* converts every argument to a float64 array (no copy when it already is one;
  a Python ``float`` or ``int`` becomes a ``np.float64`` scalar, which computes
  as a 0-d array does at a fraction of the cost),
* raises ``TypeError`` for values that are not numbers and ``ValueError`` for
  numbers outside the argument's domain, naming the function, the argument,
  the rule and the offending value,
* runs the body with floating-point warnings silenced (undefined results are
  NaN by construction, see :func:`safe_div`),
* returns a Python ``float`` when every argument was a scalar, an array
  otherwise.

The declared domains are also published on the function as ``__kpi__`` so
that the Excel boundary (:mod:`xl_kpis.cells`) can apply exactly the same
rules cell by cell instead of restating them.
"""

from __future__ import annotations

import functools
import inspect
import operator
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Domain", "KpiSpec", "kpi", "safe_div", "as_float_array", "as_labels", "codes",
           "Coded", "LazyCoded", "plain", "label_codes", "mark_plain", "is_plain", "dense", "n_distinct", "first_indices", "factorize", "present",
           "check_same_length", "check_domain", "MAX_ROWS",
           "COUNT", "MONEY", "AMOUNT",
           "FRACTION", "NONNEG", "POSITIVE", "RATING", "LABELS", "REAL", "DATES", "MONTHS",
           "UNIT"]


@dataclass(frozen=True)
class Domain:
    """The set of values an argument accepts.

    ``lo``/``hi`` are inclusive bounds (None: unbounded).  ``kind`` is
    ``"number"`` for numeric arguments, ``"label"`` for identifiers, category
    names and text options (not converted to float, not range checked) and
    ``"date"`` for calendar dates (a day each; see
    :mod:`xl_kpis.metrics.predictive`).
    """

    name: str
    rule: str
    lo: float | None = None
    hi: float | None = None
    kind: str = "number"

    def invalid(self, a: np.ndarray) -> np.ndarray:
        """Boolean mask of the elements of ``a`` outside the domain (NaN is never invalid)."""
        bad = np.zeros(a.shape, dtype=bool)
        if self.lo is not None:
            bad |= a < self.lo
        if self.hi is not None:
            bad |= a > self.hi
        return bad


COUNT = Domain("count", "must be a count >= 0", lo=0.0)
MONEY = Domain("money", "must be an amount of money >= 0", lo=0.0)
NONNEG = Domain("non-negative number", "must be >= 0", lo=0.0)
POSITIVE = Domain("positive number", "must be > 0", lo=np.nextafter(0.0, 1.0))
AMOUNT = Domain("amount", "must be a number")
REAL = AMOUNT
FRACTION = Domain("fraction", "must be a fraction between 0 and 1 (e.g. 0.35 for 35%)",
                  lo=0.0, hi=1.0)
RATING = Domain("rating", "must be a star rating between 1 and 5", lo=1.0, hi=5.0)
LABELS = Domain("labels", "must be identifiers or category names", kind="label")
DATES = Domain("dates", "must be dates", kind="date")
MONTHS = Domain("months", "must be a whole number of months from 1 to 120", lo=1.0, hi=120.0)
UNIT = Domain("unit", "must be 'weeks' or 'days'", kind="label")


@dataclass(frozen=True)
class KpiSpec:
    """What the boundary needs to know about a KPI.

    ``shape`` is ``"elementwise"`` (broadcasting arithmetic: one result per
    element), ``"aggregate"`` (ranges in, one number out) or ``"table"``
    (ranges in, a table out).
    """

    name: str
    params: tuple[tuple[str, Domain, Any], ...]  # (name, domain, default or inspect._empty)
    shape: str

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p for p, _, d in self.params if d is inspect.Parameter.empty)


def as_float_array(fname: str, arg: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array, or a TypeError naming the argument and the value."""
    if type(value) is float or type(value) is int:
        return np.asarray(value, dtype=np.float64)
    a = np.asarray(value)
    kind = a.dtype.kind
    if kind == "f" or kind in "iu":
        return a.astype(np.float64, copy=False)
    if kind == "O":
        flat = a.ravel()
        for v in flat:
            if not (v is None or (isinstance(v, (int, float, np.integer, np.floating))
                                  and not isinstance(v, (bool, np.bool_)))):
                raise TypeError(f"{fname}: argument {arg!r} must be numeric, got {v!r}")
        return np.array([np.nan if v is None else v for v in flat],
                        dtype=np.float64).reshape(a.shape)
    sample = a.ravel()[0] if a.size else value
    raise TypeError(f"{fname}: argument {arg!r} must be numeric, got {sample!r}"
                    f" (dtype {a.dtype})")


#: Rows of a table result below its header: an Excel sheet has 1,048,576 rows.  A larger
#: ``top_n`` (or layout ``rows``) is refused: it could only allocate without end.
MAX_ROWS = 1_048_575


class Coded(np.ndarray):
    """Labels (an object array of ``str``, ``None`` or ``""`` for a blank) that carry their
    factorisation, as a columnar reader gives it: ``Coded(values, codes, categories)``
    with ``values.flat[i] == categories[codes[i]]`` where ``codes[i] >= 0`` and a blank
    where it is negative.

    The KPIs that only tell ids apart (:func:`codes`, :func:`factorize`,
    :func:`as_labels`) then take the codes instead of hashing every label again.  The
    categories need not be stripped, distinct or all used: :func:`label_codes` makes
    them so, over the categories only (plus linear passes over the codes).  The codes
    describe exactly this array: a view, a slice or anything numpy computes from it is
    a plain object array as far as they go (``parts`` is None there).

    >>> ids = Coded(np.array(["b", None, "a ", "b"], dtype=object), [0, -1, 1, 0], ["b", "a "])
    >>> label_codes(ids)[0].tolist(), label_codes(ids)[1].tolist()
    ([0, -1, 1, 0], ['b', 'a'])
    >>> label_codes(ids[1:]) is None
    True
    """

    def __new__(cls, values, codes, categories) -> "Coded":
        out = np.asarray(values, dtype=object).view(cls)
        c = np.asarray(codes)
        c = c if c.ndim == 1 else c.ravel()
        cats = np.asarray(categories, dtype=object)      # the same array when it is one:
        cats = cats if cats.ndim == 1 else cats.ravel()  # what is known of it is kept
        if c.size != out.size or c.dtype.kind not in "iu":
            raise ValueError(f"Coded: {c.size} codes ({c.dtype}) for {out.size} values")
        out._parts = (c, cats)
        return out

    def __array_finalize__(self, obj) -> None:
        self._parts = None      # a view or a result: the codes no longer describe it
        self._norm = None

    def __reduce__(self):       # pickled (and copied) as a plain object array
        return np.asarray(self).__reduce__()

    @property
    def parts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(codes, categories)`` as given, or None for a view or a result."""
        return self._parts


class LazyCoded:
    """A column of :class:`Coded` labels known by its codes, its values made when first read.

    ``LazyCoded(codes, categories, shape)`` stands for
    ``Coded(values, codes, categories)`` reshaped to ``shape``, where each value is
    ``categories[code]``, ``""`` for code -2 and None for -1.  :func:`label_codes` takes
    the codes as they are; :attr:`values` (or ``numpy.asarray``) makes the
    :class:`Coded` array once: a million labels cost a Python reference each, which a
    KPI that only tells ids apart never needs.

    >>> lazy = LazyCoded(np.array([1, -1, 0, -2]), np.array(["b", "a"], dtype=object), (4, 1))
    >>> label_codes(lazy)[0].tolist(), lazy.shape
    ([1, -1, 0, -1], (4, 1))
    >>> lazy.values.ravel().tolist(), np.asarray(lazy).shape
    (['a', None, 'b', ''], (4, 1))
    """

    __slots__ = ("_parts", "_norm", "shape", "_values")

    def __init__(self, codes: np.ndarray, categories: np.ndarray, shape: tuple[int, ...]):
        if int(np.prod(shape)) != codes.size:
            raise ValueError(f"LazyCoded: {codes.size} codes for the shape {shape}")
        self._parts = (codes, categories)
        self._norm = None
        self.shape = tuple(shape)
        self._values: Coded | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self._parts[0].size

    @property
    def parts(self) -> tuple[np.ndarray, np.ndarray]:
        return self._parts

    @property
    def values(self) -> Coded:
        """The labels themselves (read-only), made on the first read."""
        if self._values is None:
            codes, cats = self._parts
            made = np.append(cats, np.array(["", None], dtype=object))[codes].reshape(self.shape)
            out = Coded(made, codes, cats)
            out.flags.writeable = False
            self._values = out
        return self._values

    def __array__(self, dtype=None, copy=None):
        values = self.values.view(np.ndarray)
        return values if dtype is None else values.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]


def plain(x: Any) -> Any:
    """``x``, or the labels of a :class:`LazyCoded` column."""
    return x.values if isinstance(x, LazyCoded) else x


def label_codes(x: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The normalised factorisation of :class:`Coded` labels, or None for anything else.

    Returns ``(codes, labels)``: ``np.intp`` codes of the labels as :func:`as_labels`
    makes them (text stripped; None, "" and white space are blank, code -1), and the
    distinct non-blank labels (a code indexes them; a label may have no line).  The
    labels are worked out once per categories array, the codes once per array (a
    linear pass over the codes).  Unlike :func:`codes`, the codes are numbered in
    the order of the categories, not in the order the labels first appear.
    """
    if not isinstance(x, (Coded, LazyCoded)) or x._parts is None:
        return None
    if x._norm is None:
        raw, cats = x._parts
        to, labels = _categories(cats)
        if raw.size and int(raw.min()) < -1:
            raw = np.maximum(raw, -1)
        # a negative code stays blank (-1); plain categories keep their codes
        x._norm = (raw if labels is cats and raw.dtype == np.intp else to[raw], labels)
    return x._norm


_CATEGORIES: dict[int, tuple[Any, tuple[np.ndarray, np.ndarray]]] = {}


def mark_plain(cats: np.ndarray) -> np.ndarray:
    """Declare the categories of :class:`Coded` labels plain labels as they are, and make
    them read-only: distinct, stripped, not blank, none reading as an error (ids of ASCII
    digits, as a reader found them).  :func:`label_codes` and the cell boundary then take
    them without a pass over them; a reader that marks other categories misreads them.

    >>> ids = mark_plain(np.array(["20", "3"], dtype=object))
    >>> is_plain(ids), is_plain(ids.copy())
    (True, False)
    """
    cats.flags.writeable = False
    _remember(cats, np.arange(len(cats) + 1, dtype=np.intp), cats)
    return cats


def is_plain(cats: Any) -> bool:
    """Whether :func:`mark_plain` declared this very array plain (its categories are its
    labels; any other categories' labels are another array)."""
    seen = _CATEGORIES.get(id(cats))
    return seen is not None and seen[0]() is cats and seen[1][1] is cats


def _categories(cats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the label code of each category, then -1; the distinct non-blank labels) of the
    categories of :class:`Coded` labels, computed once while the array lives."""
    seen = _CATEGORIES.get(id(cats))
    if seen is not None and seen[0]() is cats:
        return seen[1]
    to, labels = _categories_of(cats)
    return _remember(cats, to, labels)


def _remember(cats: np.ndarray, to: np.ndarray, labels: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(to, labels)`` of ``cats`` (``to[-1]`` set to -1, ``labels`` read-only), kept for
    :func:`_categories` while ``cats`` lives."""
    to[-1] = -1
    labels.flags.writeable = False
    key = id(cats)
    try:
        ref = weakref.ref(cats, lambda _, key=key, held=_CATEGORIES: held.pop(key, None))
    except TypeError:
        return to, labels
    _CATEGORIES[key] = (ref, (to, labels))
    return to, labels


def _categories_of(cats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_categories` by a pass over the categories (the labels are never ``cats``
    itself: that is how a plain array is told, :func:`is_plain`)."""
    try:
        stripped = list(map(str.strip, cats))
        texts = cats
    except TypeError:           # not all text: as as_labels reads such labels
        texts = ["" if t is None or (isinstance(t, float) and t != t) else
                 str(int(t)) if isinstance(t, float) and t.is_integer() else str(t)
                 for t in cats.tolist()]
        stripped = list(map(str.strip, texts))
    if not any(map(operator.is_not, stripped, texts)) and "" not in stripped:
        # nothing to strip, no blank: distinct, as a factorisation's categories are
        to = np.arange(len(texts) + 1, dtype=np.intp)
        labels = cats.view(np.ndarray)
    else:
        index: dict[str, int] = {}
        to = np.array([-1 if t == "" else index.setdefault(t, len(index)) for t in stripped]
                      + [0], dtype=np.intp)
        labels = np.empty(len(index), dtype=object)
        labels[:] = list(index)
    return to, labels


def _first_seen(c: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and labels renumbered in the order the labels first appear (those no line
    holds left out); -1 stays -1."""
    run = np.maximum.accumulate(c) if c.size else c
    if not c.size or (int(c[0]) <= 0 and int(run[-1]) == labels.size - 1
                      and bool(np.all(c[1:] <= run[:-1] + 1))):
        return c, labels                      # already so
    valid = np.flatnonzero(c >= 0)
    first = np.full(labels.size, c.size, dtype=np.intp)
    np.minimum.at(first, c[valid], valid)
    order = np.argsort(first, kind="stable")
    order = order[first[order] < c.size]
    rank = np.full(labels.size + 1, -1, dtype=np.intp)
    rank[order] = np.arange(order.size, dtype=np.intp)
    return rank[c], labels[order]


def as_labels(fname: str, arg: str, values) -> np.ndarray:
    """Identifiers as a 1-D array of str (an object array: a long label costs its own length,
    never that length times the rows); blanks (None, "", NaN) become "".

    Text is stripped of surrounding white space, whatever the size of the
    column and whether it comes as a list or a numpy array of str; a numpy integer array is taken
    as integer codes of the ids, a negative code meaning blank (see
    :func:`codes`); anything else is normalised element by element, so that
    ``1001.0``, ``1001`` and ``"1001"`` are the same id.
    """
    known = label_codes(values)
    if known is not None:     # labels with their codes: stripped from the distinct labels
        c, labels = known
        return Coded(np.append(labels, "")[c], c, labels)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.ravel()  # integers are codes (negative = blank)
    if isinstance(values, np.ndarray) and values.dtype.kind in "US":
        return np.char.strip(values.ravel().astype(str))    # text, stripped as below
    a = np.asarray(values, dtype=object).ravel()
    if a.size and set(map(type, a)) == {str}:
        # all text (a large export column): each stripped as the loop below strips it,
        # kept as an object array (no fixed-width copy; an unstripped text is the same object)
        out = np.empty(a.shape, dtype=object)
        out[:] = list(map(str.strip, a))
        return out
    out = np.empty(a.shape, dtype=object)
    for i, v in enumerate(a):
        if v is None or (isinstance(v, float) and v != v):
            out[i] = ""
        elif isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{fname}: argument {arg!r} must hold identifiers, got {v!r}")
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v).strip()
    return out


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of each element, the distinct values in the order they first appear) of a 1-D
    array: equal values share a code, as in a dict.  Memory and time are linear in the
    values (text is hashed, never copied into a fixed-width array).  The codes are
    ``np.intp``, which np.bincount takes everywhere (it is int32 on wasm32).

    >>> codes, values = factorize(np.array(["b", "a", "b"], dtype=object))
    >>> codes.tolist(), values.tolist()
    ([0, 1, 0], ['b', 'a'])
    """
    known = label_codes(values)
    if known is not None:
        return _with_blank(*_first_seen(*known))
    if values.dtype.kind in "iu":
        uniq, first, inv = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return rank[inv.ravel()].astype(np.intp), uniq[order]
    index: dict = {}
    setdefault = index.setdefault
    out = np.fromiter((setdefault(v, len(index)) for v in values.tolist()), dtype=np.intp,
                      count=values.size)
    uniq = np.empty(len(index), dtype=object)
    uniq[:] = list(index)
    return out, uniq


def _with_blank(c: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`factorize`'s answer from :func:`label_codes`: the blank label "" is a value
    too, numbered where it first appears."""
    blank = c < 0
    if not blank.any():
        return c, labels
    at = int(np.argmax(blank))                  # the first blank line
    k = int(c[:at].max()) + 1 if at else 0      # the labels seen before it: 0 .. k-1
    out = np.where(blank, k, c + (c >= k))
    return out.astype(np.intp, copy=False), np.insert(labels, k, "")


def codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes of :func:`as_labels` output (-1 for blank ""), in the order the labels
    first appear: factorise once, then every KPI over the same ids works on integers
    instead of text.  :class:`Coded` labels carry them already (numbered in the order
    of their categories: :func:`label_codes`)."""
    known = label_codes(labels)
    if known is not None:
        return known[0]
    if labels.dtype.kind in "iu":
        return labels
    out, uniq = factorize(labels)
    blank = np.flatnonzero(uniq == "")
    if blank.size:                       # "" becomes -1, the codes after it move down one
        k = int(blank[0])
        out = np.where(out == k, -1, out - (out > k))
    return out


def dense(x: np.ndarray) -> bool:
    """Whether ``x`` holds non-negative integer codes small enough to count with np.bincount
    (codes from a factorisation are; arbitrary integers such as raw 19-digit ids are not)."""
    return (x.dtype.kind in "iu" and x.size > 0 and int(x.min()) >= 0
            and int(x.max()) < 2 * x.size + 1024)


def n_distinct(x: np.ndarray) -> int:
    """How many distinct values ``x`` holds: a count of codes (linear) for dense integer
    codes, a sort otherwise.

    >>> n_distinct(np.array([3, 0, 3, 1])), n_distinct(np.array(["b", "a", "b"]))
    (3, 2)
    """
    if dense(x):
        return int(np.count_nonzero(np.bincount(x.astype(np.intp, copy=False))))
    return int(np.unique(x).size)


def first_indices(x: np.ndarray) -> np.ndarray:
    """The index of the first occurrence of each distinct value of ``x``, in ascending
    order (the lines' order, whatever the values or their codes: a sum over them adds
    in the same order however the ids were numbered); linear for dense integer codes.

    >>> first_indices(np.array([3, 0, 3, 1])).tolist()
    [0, 1, 3]
    """
    if not dense(x):
        return np.sort(np.unique(x, return_index=True)[1])
    x = x.astype(np.intp, copy=False)
    first = np.full(int(x.max()) + 1, x.size, dtype=np.intp)
    np.minimum.at(first, x, np.arange(x.size, dtype=np.intp))
    at = np.zeros(x.size, dtype=bool)
    at[first[first < x.size]] = True
    return np.flatnonzero(at)


def check_same_length(fname: str, **arrays: np.ndarray) -> None:
    """Raise ValueError naming the arguments when per-row arrays differ in length."""
    sizes = {name: a.size for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        names = [repr(n) for n in sizes]
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        got = ", ".join(map(str, sizes.values()))
        raise ValueError(f"{fname}: arguments {listed} must have the same length, got {got}")


def present(labels: np.ndarray) -> np.ndarray:
    """Mask of the non-blank labels of an :func:`as_labels` array.

    "" or a negative code is blank.
    """
    known = label_codes(labels)
    if known is not None:
        return known[0] >= 0
    return labels >= 0 if labels.dtype.kind in "iu" else labels != ""


def _check_number(fname: str, arg: str, v: float, dom: Domain) -> None:
    """Raise ValueError naming the argument, the rule and the value when the number ``v``
    leaves ``dom``.

    Parameters
    ----------
    fname, arg : str
        The function and the argument named in the message.
    v : float
        A Python float: it is compared with Python operators, as cheap as a check can be
        (NaN compares False, so it is never invalid; -0.0 is not below 0).
    dom : Domain
        The argument's domain.

    Raises
    ------
    ValueError
        ``"<fname>: argument '<arg>' <rule>, got <v>"``.
    """
    if (dom.lo is not None and v < dom.lo) or (dom.hi is not None and v > dom.hi):
        raise ValueError(f"{fname}: argument {arg!r} {dom.rule}, got {v!r}")


def check_domain(fname: str, arg: str, a: np.ndarray, dom: Domain) -> None:
    """Raise ValueError naming the argument, the rule and the value when ``a`` leaves ``dom``.

    A scalar is compared as a Python float (:func:`_check_number`: a ufunc call costs more
    than the whole comparison); an array takes one reduction per bound (no temporary
    arrays) on the happy path, and names its first invalid value (in C order).

    The lower bound is checked on the values' bits first: read as int64, a float64 sorts
    as its value when it is not negative, and every float with its sign bit set (negative,
    -0.0, a NaN with the sign) reads as negative, so the int64 minimum is below the
    bound's bits whenever a value is below the bound (a NaN without the sign never is).
    That integer minimum costs about 15 % less than ``fmin``; only when it finds
    something (a -0.0, a signed NaN, or a value out of the domain) does ``fmin`` decide.
    """
    lo, hi = dom.lo, dom.hi
    if (lo is None and hi is None) or a.size == 0:
        return
    if a.ndim == 0:
        _check_number(fname, arg, float(a), dom)
        return
    if (lo is not None and _below(a, lo)) or (hi is not None and np.fmax.reduce(a, axis=None) > hi):
        _check_number(fname, arg, float(a[dom.invalid(a)].flat[0]), dom)


def _below(a: np.ndarray, lo: float) -> bool:
    """Whether a value of the array ``a`` is below ``lo``; NaN never is.  The int64 view
    answers "no" for a float64 array and a bound >= 0; anything else goes to ``fmin``."""
    if a.dtype == np.float64 and lo >= 0.0 and \
            a.view(np.int64).min() >= np.float64(lo).view(np.int64):
        return False
    return bool(np.fmin.reduce(a, axis=None) < lo)


def kpi(shape: str = "elementwise", **domains: Domain) -> Callable:
    """Declare a KPI: the domain of each argument and the shape of its result."""

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        names = list(sig.parameters)
        missing = set(names) ^ set(domains)
        if missing:
            raise TypeError(f"kpi {fn.__name__}: domains and parameters differ: {missing}")
        params = tuple((n, domains[n], sig.parameters[n].default) for n in names)
        spec = KpiSpec(fn.__name__, params, shape)
        fname = fn.__name__
        n_all = len(names)

        if shape != "elementwise":
            # aggregates and tables validate their own (heterogeneous) inputs
            fn.__kpi__ = spec
            return fn

        defaults = tuple(d for _, _, d in params)
        n_required = sum(d is inspect.Parameter.empty for d in defaults)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not kwargs and n_required <= len(args) < n_all:
                args = args + defaults[len(args):]
            elif kwargs or len(args) != n_all:
                bound = sig.bind(*args, **kwargs)
                bound.apply_defaults()
                args = tuple(bound.arguments[n] for n in names)
            arrays = []
            scalar = True
            for (name, dom, _), v in zip(params, args):
                if type(v) is float or type(v) is int:     # a plain number: no array at all
                    v = float(v)
                    _check_number(fname, name, v, dom)
                    arrays.append(np.float64(v))
                    continue
                a = as_float_array(fname, name, v)
                check_domain(fname, name, a, dom)
                scalar = scalar and a.ndim == 0
                arrays.append(a)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out = fn(*arrays)
            return float(out) if scalar or out.ndim == 0 else out

        wrapper.__kpi__ = spec
        return wrapper

    return deco


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN wherever ``den`` is 0 (the result is undefined there).

    >>> safe_div(np.array([1.0, 1.0, 0.0]), np.array([4.0, 0.0, 0.0]))
    array([0.25,  nan,  nan])
    """
    if num.ndim == 0 and den.ndim == 0:
        d = float(den)
        return np.float64(float(num) / d) if d != 0.0 else np.float64(np.nan)
    shape = np.broadcast_shapes(num.shape, den.shape)
    out = np.full(shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out
