"""Event intake: the Segment message schema, collection, importers and enrichment."""
