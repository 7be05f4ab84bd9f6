"""Segments: who a rule, experiment or journey applies to.

This first brick is the **condition language**: GrowthBook's MongoDB-style targeting
conditions (``$and``/``$or``/``$nor``/``$not``, dotted paths, comparison, membership, array,
regex, type, version and saved-group operators) with GrowthBook's JavaScript semantics,
compiled once into a fast predicate and checked by a validator that says exactly what is
wrong. It passes all 248 ``evalCondition`` cases of GrowthBook's SDK conformance suite.

>>> from personify.segments import compile_condition
>>> mobile_fans = compile_condition({
...     "device.type": {"$in": ["mobile", "tablet"]},
...     "traits.favourite_categories": {"$elemMatch": {"$eq": "shoes"}},
...     "app_version": {"$vgte": "2.4.0"},
... })
>>> mobile_fans({"device": {"type": "mobile"}, "app_version": "2.10.1",
...              "traits": {"favourite_categories": ["bags", "shoes"]}})
True
"""

from personify.errors import Problem
from personify.segments.conditions import Condition, compile_condition, evaluate
from personify.segments.validation import validate_condition

__all__ = ["Condition", "Problem", "compile_condition", "evaluate", "validate_condition"]
