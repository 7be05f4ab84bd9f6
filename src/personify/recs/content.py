"""Content-based recommendations: TF-IDF of item text and attributes (scikit-learn).

Items are described by their catalogue title, category, text and attribute values. A user
is the weighted sum of the vectors of the items they touched; the score of an item is its
cosine with that profile. Content needs no interactions, so it is what the hybrid uses for
items nobody has bought yet (cold items) and for "similar items" of a new product.

>>> import pandas as pd
>>> from personify.recs.data import Catalogue, build_interactions
>>> cat = Catalogue.from_frame(pd.DataFrame({"item_id": ["a", "b", "c"],
...     "title": ["red heart mug", "red heart cup", "garden chair"]}))
>>> ev = pd.DataFrame({"user_id": ["u1"], "item_id": ["a"], "kind": "view",
...     "timestamp": pd.Timestamp("2024-01-01")})
>>> model = ContentBased(min_df=1).fit(build_interactions(ev, catalogue=cat))
>>> [r.item for r in model.similar_items("a", 1)]
['b']
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from personify.errors import InvalidInput
from personify.recs.base import Recommender, as_dense
from personify.recs.data import Array, Interactions, Query


class ContentBased(Recommender):
    """Cosine similarity of TF-IDF vectors (words and word pairs) of item descriptions."""

    reason = "similar to items you looked at"

    def __init__(self, min_df: int = 2, max_features: int = 50_000, ngram_max: int = 2) -> None:
        self.min_df = min_df
        self.max_features = max_features
        self.ngram_max = ngram_max

    def _fit(self, data: Interactions) -> None:
        if data.catalogue is None:
            raise InvalidInput(
                "content-based recommendations need a catalogue",
                hint="build the interactions with catalogue=Catalogue.from_frame(...)",
            )
        docs = data.catalogue.documents(data.items.tolist())
        if not any(docs):
            raise InvalidInput(
                "the catalogue has no text for any item",
                hint="give items a title, category, text or attributes",
            )
        vectorizer = TfidfVectorizer(
            min_df=min(self.min_df, sum(1 for d in docs if d)),
            max_features=self.max_features,
            ngram_range=(1, self.ngram_max),
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.vectors_ = normalize(vectorizer.fit_transform(docs)).tocsr()
        self.vocabulary_size_ = len(vectorizer.vocabulary_)

    vectors_: sp.csr_matrix
    vocabulary_size_: int

    def score(self, query: Query) -> Array:
        profile = normalize(query.history.astype(np.float32) @ self.vectors_)
        return as_dense(profile @ self.vectors_.T).astype(np.float64)

    def item_scores(self, item: int) -> Array | None:
        return as_dense(self.vectors_ @ self.vectors_[item].T).ravel().astype(np.float64)
