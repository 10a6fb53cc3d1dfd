"""Recording a notebook's headline results and its answer, and showing numbers as people read them.

Called from inside a notebook: :func:`record` takes the headline results, each a plain value or
a :class:`Result` (value, unit, label), shows them as a small table and emits them as display
data with the mimetype :data:`RESULTS_MIMETYPE`; :func:`record_answer` shows the notebook's
answer (one sentence, then details) and records it the same way. The report run reads both
back from the executed notebook (:func:`extract_record`) for the index.

Prose, tables and the index format a number with the same functions (:func:`format_number`,
:func:`format_percent`, :func:`format_duration`, :meth:`Result.text`), so the same recorded
value reads the same everywhere. Nothing heavy is imported here: papermill and nbconvert belong
to the report run.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reliability._records import Record

__all__ = [
    "RESULTS_MIMETYPE",
    "Result",
    "Recorded",
    "format_number",
    "format_percent",
    "format_duration",
    "format_quantity",
    "plural",
    "numbers_in",
    "record",
    "record_answer",
    "validate_results",
    "normalise_results",
    "extract_results",
    "extract_record",
]

#: Mimetype of the display data that carries a notebook's recorded results and answer.
RESULTS_MIMETYPE = "application/vnd.reliability.results+json"

#: Units read as durations; the value is in that unit and shown in s, min or h by its size.
DURATION_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}

#: Below this magnitude a number is not "ordinary" and is shown in scientific notation.
_SMALLEST_PLAIN = 1e-4
_LARGEST_PLAIN = 1e12


def format_number(value: Any, digits: int = 3) -> str:
    """A number as people read it: whole numbers whole, others to ``digits`` significant digits.

    Thousands are separated by commas; scientific notation is kept for numbers that are not
    ordinary (below 1e-4 or from 1e12 on); bools read ``yes``/``no``; strings pass through.

    Examples
    --------
    >>> format_number(18.6674), format_number(12.0), format_number(123456), format_number(0.25)
    ('18.7', '12', '123,456', '0.25')
    >>> format_number(2.2e-16), format_number(True), format_number(float("inf"))
    ('2.2e-16', 'yes', '∞')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    magnitude = abs(number)
    if not _SMALLEST_PLAIN <= magnitude < _LARGEST_PLAIN:
        mantissa, exponent = f"{number:.{max(digits - 1, 0)}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent):+03d}" if int(exponent) >= 0 else f"{mantissa}e-{abs(int(exponent)):02d}"
    rounded = float(f"{number:.{digits}g}")
    if rounded.is_integer():
        return f"{int(rounded):,}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}".rstrip("0").rstrip(".")


def format_percent(fraction: Any, digits: int = 3) -> str:
    """A fraction as a percentage: ``0.975`` reads ``97.5 %``.

    Examples
    --------
    >>> format_percent(0.0005), format_percent(0.01), format_percent(2.17), format_percent(0.123456)
    ('0.05 %', '1 %', '217 %', '12.3 %')
    """
    if isinstance(fraction, numbers.Real) and not math.isfinite(float(fraction)):
        return format_number(fraction)
    return f"{format_number(100.0 * float(fraction), digits)} %"


def format_duration(seconds: Any, digits: int = 3) -> str:
    """A duration in the unit that reads best: seconds up to 2 min, minutes up to 2 h, then hours.

    Examples
    --------
    >>> format_duration(45.0), format_duration(192.0), format_duration(7200.0), format_duration(2.0 * 3600 + 1800)
    ('45 s', '3.2 min', '2 h', '2.5 h')
    """
    seconds = float(seconds)
    if not math.isfinite(seconds):
        return format_number(seconds)
    size = abs(float(f"{seconds:.{digits}g}"))  # choose the unit by the value as it will read
    if size < 120.0:
        return f"{format_number(seconds, digits)} s"
    if size < 7200.0:
        return f"{format_number(seconds / 60.0, digits)} min"
    return f"{format_number(seconds / 3600.0, digits)} h"


def plural(count: Any, singular: str, plural_form: str | None = None) -> str:
    """A count with its noun in the right number: ``1 retry``, ``3 retries``, ``1,000 servers``.

    Examples
    --------
    >>> plural(1, "retry", "retries"), plural(3, "retry", "retries"), plural(1000, "server")
    ('1 retry', '3 retries', '1,000 servers')
    """
    shown = format_number(count)
    return f"{shown} {singular if shown == '1' else (plural_form or singular + 's')}"


def _singular(unit: str, shown: str) -> str:
    # "1 servers" reads wrong; a one-word plural unit drops its "s" after exactly 1.
    if shown == "1" and re.fullmatch(r"[A-Za-z]{3,}s", unit):
        return unit[:-1]
    return unit


def format_quantity(value: Any, unit: str = "", digits: int = 3) -> str:
    """A value with its unit: ``%`` makes a percentage, ``s``/``min``/``h`` a duration, ``x`` a multiple.

    Examples
    --------
    >>> format_quantity(0.05, "%"), format_quantity(600, "s"), format_quantity(2.5, "x")
    ('5 %', '10 min', '2.5x')
    >>> format_quantity(1, "servers"), format_quantity(1866.74, "Erlangs"), format_quantity("stable")
    ('1 server', '1,870 Erlangs', 'stable')
    """
    if isinstance(value, str) or isinstance(value, bool):
        return format_number(value)
    if unit == "%":
        return format_percent(value, digits)
    if unit in DURATION_UNITS:
        return format_duration(float(value) * DURATION_UNITS[unit], digits)
    shown = format_number(value, digits)
    if not unit:
        return shown
    if unit == "x":
        return f"{shown}x"
    return f"{shown} {_singular(unit, shown)}"


def _plain_value(key: str, value: Any) -> bool | int | float | str:
    """Convert one result value to a JSON-safe Python scalar, or raise ValueError."""
    # numpy scalars and 0-d arrays expose .item(); converting them avoids importing numpy here.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", ()) == ():
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(
                f"result {key!r} must be a finite number, got {value!r} "
                "(record a string such as 'unbounded' if that is the answer)"
            )
        return value
    raise ValueError(
        f"result {key!r} must be a number, string or bool, got {type(value).__name__} {value!r}"
    )


@dataclass(frozen=True, repr=False)
class Result(Record):
    """One headline result: its value, the unit it is in and a label that says what it is.

    ``unit`` is ``"%"`` for a fraction shown as a percentage, ``"s"``, ``"min"`` or ``"h"`` for a
    duration (shown in the unit that reads best), ``"x"`` for a multiple, a plural noun such as
    ``"servers"`` or ``"Erlangs"``, or empty. ``str(result)`` (and ``f"{result}"``) is the text
    that prose, tables and the index show; ``f"{result:n}"`` is the number alone.

    Examples
    --------
    >>> share = Result(0.0005, "%", "Share of requests refused")
    >>> f"{share}", f"{share:n}"
    ('0.05 %', '0.05')
    >>> str(Result(192.0, "s", "Flapping cycle"))
    '3.2 min'
    """

    value: bool | int | float | str
    unit: str = ""
    label: str = ""
    digits: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _plain_value(self.label or "value", self.value))
        if not isinstance(self.unit, str) or not isinstance(self.label, str):
            raise TypeError(f"unit and label must be strings, got {self.unit!r} and {self.label!r}")
        if isinstance(self.digits, bool) or not isinstance(self.digits, int) or not 1 <= self.digits <= 15:
            raise ValueError(f"digits must be a whole number from 1 to 15, got {self.digits!r}")

    @property
    def text(self) -> str:
        """The value with its unit, as people read it."""
        return format_quantity(self.value, self.unit, self.digits)

    @property
    def number(self) -> str:
        """The number alone (a percentage without its ``%``, a duration without its unit)."""
        return self.text.split(" ")[0].rstrip("x") if not isinstance(self.value, str) else self.value

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        if spec == "n":
            return self.number
        return format(self.text, spec)

    def schema(self) -> dict[str, Any]:
        """Unit, label and digits: what the record stores beside the value."""
        return {"unit": self.unit, "label": self.label, "digits": self.digits}


def normalise_results(results: Mapping[str, Any]) -> dict[str, Result]:
    """Check a flat results dict and make every entry a :class:`Result` (a plain value gets no unit).

    Raises
    ------
    ValueError
        Naming the offending key and value.

    Examples
    --------
    >>> normalise_results({"servers": 12})["servers"].text
    '12'
    """
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a dict, got {type(results).__name__} {results!r}")
    if not results:
        raise ValueError("results must not be empty")
    clean: dict[str, Result] = {}
    for key, value in results.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"result names must be non-empty strings, got {key!r}")
        clean[key] = value if isinstance(value, Result) else Result(_plain_value(key, value))
    return clean


def validate_results(results: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Check a flat results dict and convert its values to plain JSON scalars.

    Parameters
    ----------
    results : mapping of str to number, str, bool or Result
        Numpy scalars are converted to Python scalars. Nested containers, ``None``,
        NaN and infinities are rejected.

    Returns
    -------
    dict
        A new dict with the same keys, in the same order, holding the plain values.

    Raises
    ------
    ValueError
        Naming the offending key and value.

    Examples
    --------
    >>> import numpy as np
    >>> validate_results({"servers": np.int64(12), "meets_target": np.bool_(True)})
    {'servers': 12, 'meets_target': True}
    """
    return {key: result.value for key, result in normalise_results(results).items()}


def _results_table_html(results: Mapping[str, Result]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(r.label or k)}</th>"
        f"<td style='text-align:right'>{html.escape(r.text)}</td></tr>"
        for k, r in results.items()
    )
    return f"<table class='reliability-results'><caption>Recorded results</caption>{rows}</table>"


def _display(bundle: dict) -> None:
    """Show a display bundle when running under IPython; elsewhere do nothing."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency, but record() need not require it
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    display(bundle, raw=True)


def record(results: Mapping[str, Any], *, headline: Iterable[str] = ()) -> None:
    """Record a notebook's headline results for the report run.

    Call it from a notebook cell with a flat dict whose values are numbers, strings, bools or
    :class:`Result` (value, unit, label). The results are shown as a small table and emitted as
    display data with the mimetype :data:`RESULTS_MIMETYPE`, from which ``python -m reliability
    report`` writes the run's JSON record and the index. Several calls are merged, later values
    winning. Outside IPython the results are only validated.

    ``headline`` names the few results the index shows beside the answer (the others are folded
    under them); without it the index shows the first few.

    Raises
    ------
    ValueError
        If the results are not a flat dict of finite numbers, strings, bools and Results.

    Examples
    --------
    >>> record({"servers_needed": Result(12, "servers", "Servers needed"), "utilisation": 0.71})
    """
    clean = normalise_results(results)
    headline = list(headline)
    unknown = [k for k in headline if k not in clean]
    if unknown:
        raise ValueError(f"headline names results that were not recorded: {unknown}")
    width = max(len(r.label or k) for k, r in clean.items())
    text = "\n".join(f"{r.label or k:<{width}}  {r.text}" for k, r in clean.items())
    payload = {
        # Notebook files store JSON with sorted keys, so the order is carried separately.
        "order": list(clean),
        "results": {k: r.value for k, r in clean.items()},
        "schema": {k: r.schema() for k, r in clean.items()},
    }
    if headline:
        payload["headline"] = headline
    _display({RESULTS_MIMETYPE: payload, "text/html": _results_table_html(clean), "text/plain": text})


def record_answer(sentence: str, details: Iterable[str] = ()) -> str:
    """Show the notebook's answer, one sentence then details, and record it for the index.

    The sentence is what the index shows beside the notebook; build it (and the details)
    from recorded :class:`Result` values so that prose and results cannot disagree.

    Returns
    -------
    str
        The markdown shown (a ``## Answer`` heading, the sentence, the details as a list).

    Examples
    --------
    >>> print(record_answer("Twelve servers suffice.", ["At 10 Erlangs."]))
    ## Answer
    <BLANKLINE>
    Twelve servers suffice.
    <BLANKLINE>
    * At 10 Erlangs.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"the answer must be a non-empty sentence, got {sentence!r}")
    details = [str(d) for d in details]
    text = "\n".join(["## Answer", "", sentence.strip()] + ([""] + [f"* {d}" for d in details] if details else []))
    _display({RESULTS_MIMETYPE: {"answer": sentence.strip(), "details": details}, "text/markdown": text,
              "text/plain": text})
    return text


@dataclass(frozen=True, repr=False)
class Recorded(Record):
    """What an executed notebook recorded: plain values, their units and labels, its answer."""

    results: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer: str = ""
    details: tuple[str, ...] = ()
    headline: tuple[str, ...] = ()

    def result(self, key: str) -> Result:
        """One recorded result with its unit and label."""
        info = self.schema.get(key, {})
        return Result(self.results[key], info.get("unit", ""), info.get("label", ""), info.get("digits", 3))


def _payloads(nb) -> Iterable[dict]:
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = output.get("data", {}).get(RESULTS_MIMETYPE)
            if data is None:
                continue
            yield json.loads(data) if isinstance(data, str) else data  # some writers store JSON as text


def extract_record(nb) -> Recorded:
    """Collect the results and answer recorded (with :func:`record`, :func:`record_answer`).

    Results are merged in cell order (a later record of the same name wins and moves to the
    end); the last answer recorded is the notebook's answer.
    """
    results: dict[str, Any] = {}
    schema: dict[str, dict[str, Any]] = {}
    answer, details, headline = "", (), ()
    for data in _payloads(nb):
        if data.get("headline"):
            headline = tuple(str(k) for k in data["headline"])
        recorded = data.get("results", {})
        for key in data.get("order", sorted(recorded)):
            results.pop(key, None)
            results[key] = recorded[key]
            schema[key] = dict(data.get("schema", {}).get(key, {}))
        if data.get("answer"):
            answer, details = str(data["answer"]), tuple(str(d) for d in data.get("details", ()))
    return Recorded(results=results, schema=schema, answer=answer, details=details,
                    headline=tuple(k for k in headline if k in results))


def extract_results(nb) -> dict[str, Any]:
    """The results recorded (with :func:`record`) in an executed notebook, as plain values.

    Parameters
    ----------
    nb : nbformat.NotebookNode or dict
        An executed notebook.

    Returns
    -------
    dict
        All recorded results merged in cell order; empty if nothing was recorded.
    """
    return extract_record(nb).results


_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def numbers_in(text: str) -> list[str]:
    """The numbers written in a text, commas removed: what a reader would compare.

    Examples
    --------
    >>> numbers_in("13 servers (76.9 % busy) at 1,000 Erlangs, cycle 3.2 min")
    ['13', '76.9', '1000', '3.2']
    """
    return [match.group(0).replace(",", "") for match in _NUMBER.finditer(text)]
