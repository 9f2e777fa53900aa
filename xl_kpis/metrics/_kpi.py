"""The machinery every KPI shares: argument domains, validation, safe division.

A KPI is a plain numpy function decorated with :func:`kpi`, which declares
the *domain* of each argument (a count, an amount of money, a fraction ...).
The decorator

* converts every argument to a float64 array (no copy when it already is one),
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
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Domain", "KpiSpec", "kpi", "safe_div", "as_float_array", "as_labels", "codes",
           "dense", "n_distinct", "first_indices", "factorize", "present",
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


def as_labels(fname: str, arg: str, values) -> np.ndarray:
    """Identifiers as a 1-D array of str (an object array: a long label costs its own length,
    never that length times the rows); blanks (None, "", NaN) become "".

    Text is stripped of surrounding white space, whatever the size of the
    column and whether it comes as a list or a numpy array of str; a numpy integer array is taken
    as integer codes of the ids, a negative code meaning blank (see
    :func:`codes`); anything else is normalised element by element, so that
    ``1001.0``, ``1001`` and ``"1001"`` are the same id.
    """
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


def codes(labels: np.ndarray) -> np.ndarray:
    """Integer codes of :func:`as_labels` output (-1 for blank ""), in the order the labels
    first appear: factorise once, then every KPI over the same ids works on integers
    instead of text."""
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
    """The index of the first occurrence of each distinct value of ``x``, in the order of the
    values (as ``np.unique(x, return_index=True)[1]``); linear for dense integer codes.

    >>> first_indices(np.array([3, 0, 3, 1])).tolist()
    [1, 3, 0]
    """
    if not dense(x):
        return np.unique(x, return_index=True)[1]
    x = x.astype(np.intp, copy=False)
    first = np.full(int(x.max()) + 1, x.size, dtype=np.intp)
    np.minimum.at(first, x, np.arange(x.size, dtype=np.intp))
    return first[first < x.size]


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
    return labels >= 0 if labels.dtype.kind in "iu" else labels != ""


def check_domain(fname: str, arg: str, a: np.ndarray, dom: Domain) -> None:
    """Raise ValueError naming the argument, the rule and the value when ``a`` leaves ``dom``.

    A scalar is compared as a Python float (a ufunc call costs more than the whole
    comparison); an array takes one NaN-ignoring reduction per bound (no temporary arrays)
    on the happy path.
    """
    lo, hi = dom.lo, dom.hi
    if (lo is None and hi is None) or a.size == 0:
        return
    if a.ndim == 0:
        v = float(a)                           # NaN compares False: never invalid
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"{fname}: argument {arg!r} {dom.rule}, got {v!r}")
        return
    if (lo is not None and np.fmin.reduce(a, axis=None) < lo) or \
            (hi is not None and np.fmax.reduce(a, axis=None) > hi):
        v = float(a[dom.invalid(a)].flat[0])   # a plain number in the message
        raise ValueError(f"{fname}: argument {arg!r} {dom.rule}, got {v!r}")


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
