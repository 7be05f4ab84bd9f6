"""Version strings made comparable as plain strings (the ``$veq`` ... ``$vlte`` operators).

A version is cut into parts at ``.`` and ``-`` after dropping a leading ``v`` and any ``+build``
suffix; a plain ``major.minor.patch`` gets a ``~`` part so it sorts after its pre-releases
(``~`` is the greatest printable ASCII character); numeric parts are left-padded with spaces to
five characters so ``"  9"`` sorts before ``" 10"``. The parts are joined with ``-`` and two
versions compare as strings. Numeric parts longer than five digits are not padded, as in
GrowthBook, so ``100000.0.0`` sorts below ``99999.0.0``.

>>> padded("v1.2.3+build.7")
'    1-    2-    3-~'
>>> padded("1.0.0-rc.1") < padded("1.0.0")
True
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from personify.segments.jsvalues import number_to_string

# A leading "v", and a "+" with the rest of the input (not across a line break, as in JS).
_DECORATION: Final = re.compile("^v|\\+[^\n\r\u2028\u2029]*\\Z")
_SEPARATOR: Final = re.compile(r"[-.]")
_NUMERIC: Final = re.compile(r"[0-9]+")


@lru_cache(maxsize=4096)
def _pad(version: str) -> str:
    parts = _SEPARATOR.split(_DECORATION.sub("", version))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(part.rjust(5) if _NUMERIC.fullmatch(part) else part for part in parts)


def padded(version: object) -> str:
    """The comparable form of a version; numbers are read as text, anything else as ``"0"``."""
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = number_to_string(version)
    if not isinstance(version, str) or not version:
        version = "0"
    return _pad(version)
