"""Micro-segments: K-Means, DBSCAN and Ward clustering of customers, described in words.

Features are made comparable first: counts and money are log-transformed (they are heavily
skewed) and every column is z-scored. The number of clusters is chosen by the silhouette
score (higher is better), with the Davies-Bouldin index (lower is better) reported beside it
and used to break near ties. Each cluster is then described from how its median customer
differs from everyone's ("frequent, high spend, recent"), and can be saved as a segment whose
condition reads the cluster number written to the score store.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"frequency": np.r_[rng.poisson(1, 50), rng.poisson(20, 50)],
...                       "monetary": np.r_[rng.gamma(2, 20, 50), rng.gamma(20, 50, 50)]})
>>> result = cluster_customers(frame, method="kmeans", k_range=range(2, 5))
>>> result.k
2
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from personify.errors import InvalidInput, Problem

Method = Literal["kmeans", "dbscan", "ward"]
DEFAULT_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "average_order_value",
    "sessions",
    "refunds",
    "tenure_days",
)
_SKEWED = ("frequency", "monetary", "average_order_value", "sessions", "refunds", "events_total")
# (feature, word when high, word when low)
_WORDS = {
    "recency_days": ("lapsed", "recent"),
    "frequency": ("frequent", "rare buyers"),
    "monetary": ("high spend", "low spend"),
    "average_order_value": ("big basket", "low basket"),
    "sessions": ("many visits", "few visits"),
    "refunds": ("refund-prone", None),
    "tenure_days": ("long-standing", "new"),
    "events_total": ("very active", "quiet"),
}
_SAMPLE = 5_000  # silhouette is quadratic; score a fixed sample


@dataclass
class ClusterResult:
    """Labels per customer (-1: DBSCAN noise), the chosen k, scores and descriptions."""

    method: str
    k: int
    labels: pd.Series
    silhouette: float
    davies_bouldin: float
    candidates: list[dict[str, float]] = field(default_factory=list)
    descriptions: dict[int, str] = field(default_factory=dict)
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)


def prepare(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray[Any, Any]:
    """log1p on skewed columns, median imputation, z-scores."""
    data = frame[list(features)].astype(float).copy()
    for column in features:
        if column in _SKEWED:
            data[column] = np.log1p(data[column].clip(lower=0))
        data[column] = data[column].fillna(data[column].median()).fillna(0.0)
    std = data.std(ddof=0).replace(0, 1.0)
    return np.asarray(((data - data.mean()) / std).to_numpy(), dtype=float)


def _scores(matrix: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> tuple[float, float]:
    keep = labels >= 0
    if len(set(labels[keep].tolist())) < 2:
        return -1.0, float("inf")
    m, lab = matrix[keep], labels[keep]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(m), min(len(m), _SAMPLE), replace=False)
    if len(set(lab[idx].tolist())) < 2:
        idx = np.arange(len(m))
    return float(silhouette_score(m[idx], lab[idx])), float(davies_bouldin_score(m, lab))


def _fit(method: Method, matrix: np.ndarray[Any, Any], k: int, eps: float) -> Any:
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(matrix)
    if method == "ward":
        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(matrix)
    return DBSCAN(eps=eps, min_samples=max(5, len(matrix) // 200)).fit_predict(matrix)


def _candidates(method: Method, matrix: np.ndarray[Any, Any], k_range: Iterable[int]) -> list[Any]:
    if method != "dbscan":
        return [k for k in k_range if 2 <= k < len(matrix)]
    # DBSCAN has no k: try radii from the spread of each point's distance to its neighbours.
    neighbours = NearestNeighbors(n_neighbors=min(6, len(matrix))).fit(matrix)
    dist = neighbours.kneighbors(matrix)[0][:, -1]
    return sorted({float(np.quantile(dist, q)) for q in (0.5, 0.7, 0.8, 0.9, 0.95)})


def _try_settings(
    method: Method, matrix: np.ndarray[Any, Any], k_range: Iterable[int]
) -> list[tuple[dict[str, float], np.ndarray[Any, Any]]]:
    """Fit every candidate setting; returns its scores and labels."""
    tried = []
    for setting in _candidates(method, matrix, k_range):
        k = int(setting) if method != "dbscan" else 0
        found = np.asarray(_fit(method, matrix, k, float(setting)))
        sil, db = _scores(matrix, found)
        k_found = len(set(found.tolist()) - {-1})
        row = {"setting": float(setting), "k": k_found, "silhouette": sil, "davies_bouldin": db}
        tried.append((row, found))
    return tried


def cluster_customers(
    frame: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    method: Method = "kmeans",
    k_range: Iterable[int] = range(2, 9),
    ward_limit: int = 20_000,
) -> ClusterResult:
    """Cluster customers and pick the best setting by silhouette (Davies-Bouldin breaks ties).

    Fits run on one thread: customer tables are small, and OpenMP threads spinning on a busy
    shared machine made K-Means 50 times slower in measurement.
    """
    chosen = [f for f in (features or DEFAULT_FEATURES) if f in frame.columns]
    problems = []
    if method not in ("kmeans", "dbscan", "ward"):
        problems.append(Problem("method", "must be kmeans, dbscan or ward"))
    if not chosen:
        problems.append(Problem("features", "none of the requested features are in the table"))
    if len(frame) < 10:
        problems.append(Problem("frame", "at least 10 customers are needed"))
    if method == "ward" and len(frame) > ward_limit:
        problems.append(Problem("method", f"ward needs memory quadratic in rows (> {ward_limit})"))
    if problems:
        raise InvalidInput("cannot cluster these customers", hint="see problems", problems=problems)
    matrix = prepare(frame, chosen)
    with threadpool_limits(1):
        tried = _try_settings(method, matrix, k_range)
    if not tried:
        raise InvalidInput(
            "no cluster count to try",
            hint="give k_range with values >= 2",
            problems=[Problem("k_range", "no usable value")],
        )
    best, best_labels = max(
        tried, key=lambda t: (round(t[0]["silhouette"], 3), -t[0]["davies_bouldin"])
    )
    labels = pd.Series(best_labels, index=frame.index, name="cluster")
    profiles, words = describe_clusters(frame, labels, chosen)
    return ClusterResult(
        method=method,
        k=int(best["k"]),
        labels=labels,
        silhouette=best["silhouette"],
        davies_bouldin=best["davies_bouldin"],
        candidates=[row for row, _ in tried],
        descriptions=words,
        profiles=profiles,
    )


def describe_clusters(
    frame: pd.DataFrame, labels: pd.Series, features: Sequence[str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Median of each feature per cluster, and words for what sets each cluster apart.

    A feature is mentioned when the cluster's median sits in the top or bottom third of all
    customers; the most extreme features come first (at most three).
    """
    data = frame[list(features)].astype(float)
    medians = data.groupby(labels).median()
    sizes = labels.value_counts()
    words: dict[int, str] = {}
    for position, cluster in enumerate(medians.index.to_numpy(dtype=int).tolist()):
        row = medians.iloc[position]
        notes = []
        for feature in features:
            high, low = _WORDS.get(feature, (f"high {feature}", f"low {feature}"))
            col = data[feature].dropna()
            if col.empty or pd.isna(row[feature]):
                continue
            pct = float((col < row[feature]).mean() + 0.5 * (col == row[feature]).mean())
            if pct >= 2 / 3 and high:
                notes.append((pct - 0.5, high))
            elif pct <= 1 / 3 and low:
                notes.append((0.5 - pct, low))
        notes.sort(key=lambda n: -n[0])
        text = ", ".join(w for _, w in notes[:3]) or "typical customers"
        if cluster == -1:
            text = "outliers (no dense group): " + text
        words[cluster] = text
    profiles = medians.assign(size=sizes.reindex(medians.index).to_numpy())
    return profiles, words


def cluster_segments(result: ClusterResult, score_name: str = "cluster") -> list[dict[str, Any]]:
    """Segment definitions, one per cluster, whose condition reads ``scores.<score_name>``.

    Batch clustering writes each profile's cluster number under ``score_name``; these bodies
    can then be saved as segments (the ``segments:`` section of a workspace file, or the
    segments API). DBSCAN's noise (-1) gets no segment.
    """
    out = []
    for cluster, text in sorted(result.descriptions.items()):
        if cluster < 0:
            continue
        out.append(
            {
                "key": f"{score_name}_{cluster}",
                "name": f"Cluster {cluster}: {text}"[:120],
                "description": f"{result.method} cluster {cluster} of {result.k}: {text}",
                "condition": {f"scores.{score_name}": cluster},
            }
        )
    return out
