"""The predictive half: features, supervised models, lifetime value, clusters, registry.

Heavy libraries (LightGBM, scikit-learn, scipy) are imported by the submodules that need them,
so importing :mod:`personify.models` stays cheap.
"""

from personify.models.registry import ModelRegistry, ModelVersion

__all__ = ["ModelRegistry", "ModelVersion"]
