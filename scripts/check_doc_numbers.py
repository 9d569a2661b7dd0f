#!/usr/bin/env python3
"""Checks that the numbers README.md and docs/*.md cite from results files match those files.

The convention (an HTML comment, invisible on the rendered page), placed
right after the paragraph or table whose numbers it backs::

    ResNet-20 gradient 4.54 s, HVP 10.63 s (×2.34).
    <!-- checked against benchmarks/results/hvp_cost.json:
    runs[0].grad_s = 4.54
    runs[0].hvp_s = 10.63
    runs[0].hvp_over_grad = 2.34
    -->

Each line ``KEY = SHOWN`` says: the value at ``KEY`` in the JSON file,
rounded as ``SHOWN`` is written, is ``SHOWN``; and ``SHOWN`` appears, as
written, in the paragraph or table just above the comment. ``KEY`` is a path
of ``.name``, ``[index]`` and ``["name with spaces"]`` steps, optionally
followed by ``* FACTOR`` (``... * 100 = 6.15`` for a fraction shown in %).
``SHOWN`` is a number as the page writes it (``2,253``, ``0.057``,
``1.8e-4``); the tolerance is half a unit of its last digit (``0.057``:
±0.0005), so a rounded number passes and a different one does not. A line
``against OTHER.json:`` switches the file for the lines after it. Paths are
relative to the repository root.

Run ``python scripts/check_doc_numbers.py``: it lists every number it
checked, and every results file a page names that no comment checks, and
exits 1 when a number does not match (``tests/test_hardening2_view_docs.py``
runs it, so CI does).
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = re.compile(r"<!--\s*checked against\s+(\S+?):?\s*$")
AGAINST = re.compile(r"^\s*against\s+(\S+?):?\s*$")
LINE = re.compile(r"^\s*(?P<key>.+?)\s*(?:\*\s*(?P<factor>[-+0-9.eE]+)\s*)?=\s*"
                  r"(?P<shown>[-+]?[0-9][0-9,]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*$")
STEP = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(-?[0-9]+)\]|\["([^"]*)"\]')
CITED = re.compile(r"(?:benchmarks/results/[\w.\-]+\.json|docs/figures/[\w.\-]+\.json)")


@dataclass
class Check:
    page: str
    line: int
    file: str
    key: str
    shown: str
    value: float | None = None
    problem: str | None = None

    def __str__(self) -> str:
        got = "?" if self.value is None else f"{self.value:.6g}"
        status = "ok" if self.problem is None else f"WRONG: {self.problem}"
        return f"{self.page}:{self.line}: {self.file} {self.key} = {got}, shown {self.shown}: " \
               f"{status}"


def lookup(data: Any, key: str) -> Any:
    """The value at ``key`` (``a.b[0]["c d"]``) in parsed JSON; KeyError/IndexError if absent."""
    pos, value = 0, data
    while pos < len(key):
        step = STEP.match(key, pos)
        if step is None or step.end() == pos:
            raise KeyError(f"cannot read the key path {key!r} at {key[pos:]!r}")
        name, index, quoted = step.groups()
        value = value[int(index)] if index is not None else value[quoted if quoted is not None
                                                                  else name]
        pos = step.end()
    return value


def tolerance(shown: str) -> float:
    """Half a unit of the last digit written (``0.057`` → 0.0005, ``2,253`` → 0.5)."""
    exponent = Decimal(shown.replace(",", "")).as_tuple().exponent
    return 0.5 * 10.0 ** int(exponent) * (1 + 1e-9)


def block_above(lines: list[str], start: int) -> str:
    """The paragraph or table above line ``start`` (skipping blank lines and other
    check comments directly above it)."""
    k = start - 1
    while k >= 0:
        if not lines[k].strip():
            k -= 1
        elif lines[k].strip() == "-->":              # the end of another check comment
            while k >= 0 and not START.search(lines[k]):
                k -= 1
            k -= 1
        else:
            break
    end = k
    while k >= 0 and lines[k].strip():
        k -= 1
    return "\n".join(lines[k + 1:end + 1])


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def spellings(shown: str) -> list[str]:
    """``1.4e-7`` is also written ``1.4·10⁻⁷`` (or with ×), ``-0.03`` as ``−0.03``."""
    mantissa, e, exponent = shown.replace("E", "e").partition("e")
    forms = [shown]
    if e:
        power = "10" + str(int(exponent)).translate(SUPERSCRIPT)
        forms += [f"{mantissa}{sep}{power}" for sep in ("·", " · ", "×", " × ")]
    return forms + ["−" + form[1:] for form in forms if form.startswith("-")]  # U+2212


def appears(shown: str, text: str) -> bool:
    """Whether ``shown`` is written in ``text`` as a number of its own."""
    return any(re.search(r"(?<![0-9.,])" + re.escape(form) + r"(?![0-9]|[.,][0-9])", text)
               for form in spellings(shown))


def _name(page: Path, root: Path = ROOT) -> str:
    page = page.resolve()
    return str(page.relative_to(root)) if page.is_relative_to(root) else str(page)


def check_page(page: Path, root: Path = ROOT) -> tuple[list[Check], set[str]]:
    """The checks of one page, and the results files it names."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    name = _name(page, root)
    checks: list[Check] = []
    k = 0
    while k < len(lines):
        start = START.search(lines[k])
        if not start:
            k += 1
            continue
        block = block_above(lines, k)
        file = start.group(1)
        k += 1
        while k < len(lines) and lines[k].strip() != "-->":
            raw = lines[k]
            k += 1
            if not raw.strip():
                continue
            switch = AGAINST.match(raw)
            if switch:
                file = switch.group(1)
                continue
            check = Check(name, k, file, raw.strip(), "")
            checks.append(check)
            match = LINE.match(raw)
            if not match:
                check.problem = "not a line KEY [* FACTOR] = NUMBER"
                continue
            check.key, check.shown = match.group("key"), match.group("shown")
            factor = float(match.group("factor") or 1)
            try:
                data = json.loads((root / file).read_text(encoding="utf-8"))
                raw_value = lookup(data, check.key)
                check.value = float(raw_value) * factor
            except FileNotFoundError:
                check.problem = f"no file {file}"
                continue
            except (KeyError, IndexError, TypeError, ValueError) as err:
                check.problem = f"no number at {check.key} ({err})"
                continue
            shown = float(check.shown.replace(",", ""))
            if not math.isclose(check.value, shown, abs_tol=tolerance(check.shown)):
                check.problem = f"the file says {check.value:.6g}"
            elif not appears(check.shown, block):
                check.problem = "the number is not written in the paragraph or table above"
        k += 1
    return checks, set(CITED.findall(text))


def main(argv: list[str] | None = None) -> int:
    pages = [Path(p) for p in (argv if argv else [])] or \
        [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checks: list[Check] = []
    unchecked: list[str] = []
    for page in pages:
        found, cited = check_page(page)
        checks += found
        for file in sorted(cited - {c.file for c in found}):
            unchecked.append(f"{_name(page)}: names {file}; no number of it is "
                             f"checked (add a 'checked against' comment)")
    for check in checks:
        print(check)
    for note in unchecked:
        print(f"note: {note}")
    wrong = [c for c in checks if c.problem is not None]
    print(f"{len(checks)} numbers checked in {len({c.page for c in checks})} pages against "
          f"{len({c.file for c in checks})} results files; {len(wrong)} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
