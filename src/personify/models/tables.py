"""Customer tables from CSV files: any file with one row per customer and a label column.

Text columns that are really numbers with a few blanks (Telco's ``TotalCharges``) become
numbers; the label is read from the usual spellings of yes/no; the id column is dropped from
the features and kept as the index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from personify.errors import InvalidInput, NotFound, Problem

_YES = {"1", "yes", "y", "true", "t", "churn", "churned"}
_NO = {"0", "no", "n", "false", "f", "stay", "stayed"}


def read_customer_table(
    path: Path, label: str, id_column: str | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Features and a 0/1 label from a CSV file (one row per customer)."""
    if not path.is_file():
        raise NotFound(f"no file at {path}", hint="give the path of a CSV file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read {path} as CSV: {exc}", hint="save the table as UTF-8 CSV"
        ) from None
    missing = [c for c in (label, id_column) if c is not None and c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{path.name} has no column(s) {', '.join(missing)}",
            hint=f"columns found: {', '.join(frame.columns[:30])}",
            problems=[Problem(c, "no such column") for c in missing],
        )
    y = label_series(frame[label], label)
    X = frame.drop(columns=[c for c in (label, id_column) if c is not None])
    if id_column is not None:
        X.index = pd.Index(frame[id_column], name=id_column)
        y.index = X.index
    return numeric_where_possible(X), y


def label_series(column: pd.Series, name: str) -> pd.Series:
    """0/1 from yes/no, true/false, 1/0 (case-insensitive); anything else is refused."""
    text = column.astype(str).str.strip().str.lower()
    unknown = sorted(set(text) - _YES - _NO)
    if unknown:
        raise InvalidInput(
            f"the label column {name!r} holds values that are not yes/no: {unknown[:5]}",
            hint="use 1/0, yes/no or true/false for the label",
            problems=[Problem(name, f"unreadable value {unknown[0]!r}")],
        )
    return pd.Series(text.isin(_YES).astype(int).to_numpy(), index=column.index, name=name)


def numeric_where_possible(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose non-blank cells all parse as numbers become floats (blanks: NaN)."""
    out = frame.copy()
    for column in out.columns:
        text = out[column].astype(str).str.strip()
        blank = text.eq("")
        parsed = pd.to_numeric(text.where(~blank), errors="coerce")
        if parsed[~blank].notna().all() and (~blank).any():
            out[column] = parsed.astype(float)
        else:
            out[column] = text.where(~blank, np.nan)
    return out
