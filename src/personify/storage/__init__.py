"""Storage ports (``ports.py``) and one folder per backend implementing them."""
