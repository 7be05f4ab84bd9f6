"""personify: an open-source personalization engine for customer journeys.

>>> from personify import Personify, Settings
"""

from personify.config import Settings
from personify.facade import Personify

__all__ = ["Personify", "Settings"]
__version__ = "0.1.0"
