"""Product recommendations: interactions, recommenders, evaluation and serving.

* :mod:`~personify.recs.data` — event frames into sparse user x item interactions
* :mod:`~personify.recs.popularity`, :mod:`~personify.recs.neighbours`,
  :mod:`~personify.recs.factorization`, :mod:`~personify.recs.content`,
  :mod:`~personify.recs.hybrid` — recommenders behind one interface (``base.Recommender``)
* :mod:`~personify.recs.rules` — business rules (stock, bought, placements, diversity, boosts)
* :mod:`~personify.recs.evaluation` — the time-split harness and the reference protocol
* :mod:`~personify.recs.serving` — the registered model, session fold-in, ``recommend_for``

Submodules import scikit-learn, scipy and implicit; this package imports nothing heavy.
"""
