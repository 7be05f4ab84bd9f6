"""Identity: normalizing identifiers and resolving them to profiles."""
