"""The ``personify`` command line: a thin shell over the same services the API uses."""
