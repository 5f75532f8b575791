"""Privacy by display (个人信息保护法: the minimum necessary; issue 17).

Lists show ID numbers and phone numbers masked — 3701**********0037, 138****0003: enough to tell rows
apart and to recognise one's own, not enough to copy a stranger's. Details pages show them in full to
those who may open the row (visibility decides that, as for every read); searches match the full number
exactly; exports keep full numbers and are logged. Every masked screen value comes from here.
"""

from __future__ import annotations


def mask_id_number(value: str | None) -> str:
    """The first 4 and last 4 characters of an ID number (region and check digits), the rest starred."""
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}"


def mask_phone(phone: str | None) -> str:
    """138****0001: enough for the user to recognise their phone, not enough to learn it."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"
