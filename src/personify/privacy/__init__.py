"""Privacy by design: access control, consent, data-subject rights, PII protection, audit.

``service.Privacy`` bundles the parts; the engine holds it as ``Personify.privacy``. See the
"Privacy" section of ``docs/architecture.md`` for how they fit together.
"""
