"""Interactions and the catalogue: what every recommender is fitted on.

An *event frame* is the common input, whatever the source (the event store, the Online
Retail file, a test): one row per user-item event with the columns ``user_id``, ``item_id``,
``kind`` (``view``, ``add_to_cart`` or ``purchase``), ``timestamp`` and, optionally,
``order_id`` (purchases of one order count once). :func:`build_interactions` turns it into
sparse user x item matrices with id maps:

* ``matrix``: the implicit-feedback signal, each event weighted by its kind and, with a
  half-life, decayed by its age (or 1/0 with ``binary=True``, the reference protocol);
* ``purchases``: how many distinct orders contained the item (repeat-purchase signal);
* ``recency``: 1 + days from the user's last event on the item to ``as_of`` (0 = never),
  which gives "recent window" popularity and recency of a repeat purchase without keeping
  the raw events.

>>> import pandas as pd
>>> events = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"],
...     "kind": ["purchase", "view", "purchase"],
...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
>>> data = build_interactions(events)
>>> data.matrix.toarray().tolist()
[[10.0, 1.0], [10.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp

from personify.errors import InvalidInput, Problem

EVENT_KINDS = ("view", "add_to_cart", "purchase")
REQUIRED_COLUMNS = ("user_id", "item_id", "kind", "timestamp")
CATALOGUE_COLUMNS = ("title", "category", "price", "text", "in_stock")

Csr: TypeAlias = sp.csr_matrix
Array: TypeAlias = np.ndarray[Any, Any]


@dataclass(frozen=True)
class InteractionWeights:
    """How much each kind of event says about interest, and how fast it fades.

    Purchases weigh most because they cost the customer something; views least because
    many are accidental. ``half_life_days`` halves an event's weight every that many days
    before ``as_of`` (``None``: no decay). ``binary`` ignores all of that: 1 if any event.
    """

    view: float = 1.0
    add_to_cart: float = 4.0
    purchase: float = 10.0
    half_life_days: float | None = None
    binary: bool = False

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))

    def validate(self) -> None:
        problems = [
            Problem(name, "must be a number >= 0")
            for name in EVENT_KINDS
            if not np.isfinite(self.of(name)) or self.of(name) < 0
        ]
        if self.half_life_days is not None and not self.half_life_days > 0:
            problems.append(Problem("half_life_days", "must be > 0 (or unset for no decay)"))
        if problems:
            raise InvalidInput(
                "invalid interaction weights",
                hint="weights are non-negative numbers, e.g. view=1 add_to_cart=4 purchase=10",
                problems=problems,
            )


@dataclass
class Catalogue:
    """Items for sale: a frame indexed by item id with title, category, price, text, in_stock.

    ``attributes`` (a dict per item) is optional; its values are added to the text that
    content-based similarity reads, so "colour: red" makes two red items closer.
    """

    frame: pd.DataFrame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Catalogue:
        """Validate and normalize a catalogue frame (``item_id`` column or index)."""
        df = frame.copy()
        if "item_id" in df.columns:
            df = df.set_index("item_id")
        problems = []
        if df.index.has_duplicates:
            dupes = df.index[df.index.duplicated()].unique()[:5].tolist()
            problems.append(Problem("item_id", f"duplicated ids, e.g. {dupes}"))
        if df.index.isna().any():
            problems.append(Problem("item_id", "empty ids"))
        if "price" in df.columns and (pd.to_numeric(df["price"], errors="coerce") < 0).any():
            problems.append(Problem("price", "negative prices"))
        if problems:
            raise InvalidInput(
                "invalid catalogue",
                hint="one row per item with a unique item_id",
                problems=problems,
            )
        df.index = df.index.astype(str)
        df.index.name = "item_id"
        defaults: dict[str, Any] = {
            "title": None,
            "category": None,
            "price": np.nan,
            "text": "",
            "in_stock": True,
        }
        for col, default in defaults.items():
            if col not in df.columns:
                df[col] = default
        df["price"] = pd.to_numeric(df["price"], errors="coerce")
        df["in_stock"] = [True if pd.isna(v) else bool(v) for v in df["in_stock"]]
        if "attributes" not in df.columns:
            df["attributes"] = pd.Series([{} for _ in range(len(df))], index=df.index, dtype=object)
        return cls(df)

    def __len__(self) -> int:
        return len(self.frame)

    def describe(self, item: str) -> dict[str, Any]:
        """Title, category and price of an item (``None`` where the catalogue has no row)."""
        if item not in self.frame.index:
            return {"id": item, "title": None, "category": None, "price": None}
        row = self.frame.loc[item]
        price = row["price"]
        return {
            "id": item,
            "title": None if pd.isna(row["title"]) else str(row["title"]),
            "category": None if pd.isna(row["category"]) else str(row["category"]),
            "price": None if pd.isna(price) else round(float(price), 2),
        }

    def documents(self, items: Sequence[str]) -> list[str]:
        """The text content-based models read: title, category, text and attribute values."""
        frame = self.frame.reindex(list(items))
        docs = []
        for title, category, text, attrs in zip(
            frame["title"], frame["category"], frame["text"], frame["attributes"], strict=True
        ):
            parts = [str(v) for v in (title, category, text) if isinstance(v, str) and v]
            if isinstance(attrs, Mapping):
                parts.extend(f"{k} {v}" for k, v in attrs.items())
            docs.append(" ".join(parts))
        return docs


@dataclass
class Interactions:
    """Sparse user x item signals with the id maps that name their rows and columns."""

    users: Array  # row -> user id (str)
    items: Array  # column -> item id (str)
    matrix: Csr
    purchases: Csr
    recency: Csr
    as_of: pd.Timestamp
    segments: Array  # row -> segment name or None
    catalogue: Catalogue | None = None
    user_index: dict[str, int] = field(default_factory=dict, repr=False)
    item_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.user_index = {str(u): i for i, u in enumerate(self.users.tolist())}
        self.item_index = {str(t): i for i, t in enumerate(self.items.tolist())}

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def binary(self) -> Csr:
        """1 where the user had any event on the item."""
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        out.eliminate_zeros()
        return out

    def query(self, rows: Sequence[int] | Array) -> Query:
        """The training histories of these users (row indices) as a scoring query."""
        idx = np.asarray(rows, dtype=np.int64)
        segments = [self.segments[i] for i in idx.tolist()]
        return Query(
            users=idx,
            history=self.matrix[idx],
            purchases=self.purchases[idx],
            recency=self.recency[idx],
            segments=segments,
            folded=np.zeros(len(idx), dtype=bool),
        )

    def item_rows(self, items: Sequence[str]) -> Array:
        """Column indices of known items (unknown ids are left out)."""
        return np.array([self.item_index[i] for i in items if i in self.item_index], dtype=np.int64)


@dataclass
class Query:
    """Whom to score: one row per user with what is known about them now.

    ``users`` holds training rows, or -1 for someone the model never saw; ``folded`` marks
    rows whose history has events the model was not fitted on (session fold-in), so
    factorization models recompute those users instead of reading stored factors.
    """

    users: Array
    history: Csr
    purchases: Csr
    recency: Csr
    segments: list[str | None]
    folded: Array

    def __len__(self) -> int:
        return len(self.users)


def check_event_frame(events: pd.DataFrame) -> None:
    """Raise :class:`InvalidInput` naming each problem of an event frame."""
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise InvalidInput(
            f"the event frame lacks column(s) {', '.join(missing)}",
            hint=f"give one row per event with {', '.join(REQUIRED_COLUMNS)} (and order_id)",
            problems=[Problem(c, "missing") for c in missing],
        )
    problems = []
    bad_kinds = sorted(set(events["kind"].astype(str)) - set(EVENT_KINDS))
    if bad_kinds:
        problems.append(Problem("kind", f"unknown kind(s) {bad_kinds[:5]}; use {EVENT_KINDS}"))
    for col in ("user_id", "item_id"):
        if events[col].isna().any():
            problems.append(Problem(col, f"{int(events[col].isna().sum())} empty value(s)"))
    if pd.to_datetime(events["timestamp"], errors="coerce", utc=True).isna().any():
        problems.append(Problem("timestamp", "missing or unparseable timestamps"))
    if problems:
        raise InvalidInput(
            "invalid event frame",
            hint="drop or fix the rows named in problems",
            problems=problems,
        )


def build_interactions(
    events: pd.DataFrame,
    *,
    weights: InteractionWeights | None = None,
    as_of: pd.Timestamp | None = None,
    catalogue: Catalogue | None = None,
    segments: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
) -> Interactions:
    """Build :class:`Interactions` from an event frame (see the module docstring).

    ``items`` fixes the column universe (events on other items are dropped); by default it
    is every item with an event plus every catalogue item, so items nobody touched yet can
    still be recommended by content. ``as_of`` defaults to the latest event.
    """
    weights = weights or InteractionWeights()
    weights.validate()
    check_event_frame(events)
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str).to_numpy(),
            "item_id": events["item_id"].astype(str).to_numpy(),
            "kind": events["kind"].astype(str).to_numpy(),
            "ts": _utc_naive(events["timestamp"]),
            "order_id": (
                events["order_id"].astype(str).to_numpy()
                if "order_id" in events.columns
                else np.arange(len(events)).astype(str)
            ),
        }
    )
    if items is None:
        universe = set(frame["item_id"])
        if catalogue is not None:
            universe |= set(catalogue.frame.index)
        item_ids = np.array(sorted(universe), dtype=object)
    else:
        item_ids = np.array(list(dict.fromkeys(str(i) for i in items)), dtype=object)
        frame = frame[frame["item_id"].isin(set(item_ids))]
    user_ids = np.array(sorted(set(frame["user_id"])), dtype=object)
    stamp = _utc_naive(pd.Series([as_of])).iloc[0] if as_of is not None else frame["ts"].max()
    if pd.isna(stamp):
        stamp = pd.Timestamp("1970-01-01")
    rows = pd.Index(user_ids).get_indexer(frame["user_id"])
    cols = pd.Index(item_ids).get_indexer(frame["item_id"])
    shape = (len(user_ids), len(item_ids))
    age_days = np.maximum((stamp - frame["ts"]).dt.total_seconds().to_numpy() / 86400, 0.0)
    matrix = _weighted(frame["kind"].to_numpy(), age_days, rows, cols, shape, weights)
    bought = frame["kind"].to_numpy() == "purchase"
    orders = (
        pd.DataFrame({"r": rows[bought], "c": cols[bought], "o": frame["order_id"][bought]})
        .drop_duplicates()
        .groupby(["r", "c"])
        .size()
    )
    purchases = _from_series(orders, shape)
    last = pd.Series(age_days).groupby([rows, cols]).min()
    recency = _from_series(1.0 + last, shape)
    seg = segments or {}
    return Interactions(
        users=user_ids,
        items=item_ids,
        matrix=matrix,
        purchases=purchases,
        recency=recency,
        as_of=pd.Timestamp(stamp),
        segments=np.array([seg.get(u) for u in user_ids.tolist()], dtype=object),
        catalogue=catalogue,
    )


def _weighted(
    kinds: Array,
    age_days: Array,
    rows: Array,
    cols: Array,
    shape: tuple[int, int],
    weights: InteractionWeights,
) -> Csr:
    if weights.binary:
        values = np.ones(len(rows))
    else:
        values = np.select(
            [kinds == k for k in EVENT_KINDS], [weights.of(k) for k in EVENT_KINDS], 0.0
        )
        if weights.half_life_days is not None:
            values = values * np.power(0.5, age_days / weights.half_life_days)
    out = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float64)
    out.sum_duplicates()
    if weights.binary:
        out.data = np.ones_like(out.data)
    out.eliminate_zeros()
    return out.astype(np.float32)


def _from_series(values: pd.Series, shape: tuple[int, int]) -> Csr:
    if values.empty:
        return sp.csr_matrix(shape, dtype=np.float32)
    r = values.index.get_level_values(0).to_numpy()
    c = values.index.get_level_values(1).to_numpy()
    return sp.csr_matrix(
        (values.to_numpy(dtype=np.float64), (r, c)), shape=shape, dtype=np.float64
    ).astype(np.float32)


def _utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (aware ones converted, naive ones taken as UTC already)."""
    ts = pd.to_datetime(values, errors="coerce")
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.reset_index(drop=True)
