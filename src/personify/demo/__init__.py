"""A seeded synthetic storefront for demos, docs and tests.

:func:`generate` streams the raw Segment messages (``track``, ``identify``, ``page``,
``alias``) that shoppers with known personas would send to the collector, so the whole
pipeline can be shown without real customer data; :func:`personas` is the answer key.

>>> from personify.demo import StorefrontSpec, estimate_events
>>> estimate_events(StorefrontSpec(customers=10, days=30)) > 0
True
"""

from personify.demo.catalogue import Product, build_catalogue
from personify.demo.shoppers import PERSONA_SHARES
from personify.demo.storefront import StorefrontSpec, estimate_events, generate, personas

__all__ = [
    "PERSONA_SHARES",
    "Product",
    "StorefrontSpec",
    "build_catalogue",
    "estimate_events",
    "generate",
    "personas",
]
