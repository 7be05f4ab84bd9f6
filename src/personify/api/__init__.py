"""The HTTP API: a thin FastAPI shell over :class:`personify.Personify`."""
