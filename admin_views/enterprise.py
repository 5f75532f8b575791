"""(being built)"""

from __future__ import annotations


def register(admin) -> None:
    """Adds this module's views to the admin."""
