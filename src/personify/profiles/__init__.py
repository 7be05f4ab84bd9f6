"""Unified profiles: traits with provenance, computed traits, and the processor that keeps them."""
