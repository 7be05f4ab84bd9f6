"""Drift (PSI, KS) and clustering into described micro-segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personify.errors import InvalidInput
from personify.models.clustering import cluster_customers, cluster_segments
from personify.models.drift import drift_report, psi
from personify.segments.definition import validate as validate_segment


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=4000)
    assert psi(a, rng.normal(size=4000)) < 0.02
    assert 0.1 < psi(a, rng.normal(0.4, 1, 4000)) < 0.3
    assert psi(a, rng.normal(2, 1, 4000)) > 1.0


def test_psi_counts_missing_values_as_their_own_bin() -> None:
    a = np.r_[np.arange(100.0), [np.nan] * 10]
    b = np.r_[np.arange(100.0), [np.nan] * 60]
    assert psi(a, a) == pytest.approx(0.0)
    assert psi(a, b) > 0.1


def test_drift_report_flags_shifted_features_and_asks_for_retraining() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"recency": rng.exponential(30, 3000), "score": rng.uniform(size=3000)})
    same = pd.DataFrame({"recency": rng.exponential(30, 3000), "score": rng.uniform(size=3000)})
    moved = same.assign(recency=same["recency"] * 3)
    calm = drift_report(ref, same)
    assert not calm["retrain"] and calm["drifted"] == []
    report = drift_report(ref, moved, threshold=0.2)
    assert report["retrain"] and report["drifted"] == ["recency"]
    first = report["features"][0]
    assert first["feature"] == "recency" and first["ks_pvalue"] < 1e-6


def _groups(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 150
    return pd.DataFrame(
        {
            "recency_days": np.r_[rng.uniform(1, 20, n), rng.uniform(150, 300, n)],
            "frequency": np.r_[rng.poisson(15, n) + 5, rng.poisson(1, n) + 1],
            "monetary": np.r_[rng.gamma(20, 60, n), rng.gamma(2, 20, n)],
        },
        index=[f"p{i}" for i in range(2 * n)],
    )


@pytest.mark.parametrize("method", ["kmeans", "ward", "dbscan"])
def test_clear_groups_are_found_and_described(method: str) -> None:
    frame = _groups()
    result = cluster_customers(frame, method=method, k_range=range(2, 6))  # type: ignore[arg-type]
    assert result.k == 2 and result.silhouette > 0.5
    loyal = result.labels.iloc[0]
    assert (result.labels.iloc[:150] == loyal).mean() > 0.95
    words = result.descriptions[int(loyal)]
    assert "recent" in words and "frequent" in words
    lapsed = result.labels.iloc[-1]
    assert "lapsed" in result.descriptions[int(lapsed)]
    assert result.candidates and all("davies_bouldin" in c for c in result.candidates)


def test_clusters_become_segment_definitions_on_the_cluster_score() -> None:
    result = cluster_customers(_groups(), method="kmeans", k_range=[2])
    segments = cluster_segments(result)
    assert [s["condition"] for s in segments] == [{"scores.cluster": 0}, {"scores.cluster": 1}]
    assert all("kmeans cluster" in s["description"] for s in segments)
    assert all(validate_segment(s) == [] for s in segments)  # savable as they are


def test_clustering_refuses_unusable_inputs() -> None:
    with pytest.raises(InvalidInput) as err:
        cluster_customers(_groups().head(5), method="kmeans")
    assert err.value.problems[0].field == "frame"
    with pytest.raises(InvalidInput):
        cluster_customers(_groups(), features=["nope"])
    with pytest.raises(InvalidInput):
        cluster_customers(_groups(), method="spectral")  # type: ignore[arg-type]
