"""(being built)"""

from __future__ import annotations


def register(admin) -> None:
    """Adds this module's views to the admin."""


def init_app(app) -> None:
    """The public 企业注册 / 个人注册 pages (a blueprint outside the admin)."""
