"""What the views' WTForms forms share (ARCHITECTURE: admin_views/).

Every POST a view reads is a ``FlaskForm`` declared in the view's module, with the field names
the templates post. Fields whose rules live in workflows.* (one rule, one place: 企业信息, 用户,
机构资料, 考生) are declared without validators of their own and handed to the workflow as
``values(form)``; what only the page knows (a box left empty, a choice not offered) is a
validator with the page's Chinese message, reported by ``refusal(form)``.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField


class RowForm(FlaskForm):
    """A button on one row's page: the row's ``id`` (forged or foreign ids are a 404 where it is
    loaded through visibility, as every read)."""

    id = StringField()


def values(form: FlaskForm) -> dict[str, str]:
    """What was typed into ``form``'s text fields, for a workflows function that checks them
    field by field (and for the page that shows them again): no token, never None."""
    return {field.name: field.data if field.data is not None else "" for field in form
            if field.name != "csrf_token" and (field.data is None or isinstance(field.data, str))}


def refusal(form: FlaskForm) -> str | None:
    """The first validator message of a form that did not validate, in field order (the token is
    checked app-wide by CSRFProtect before any view runs)."""
    for name, errors in form.errors.items():
        if name != "csrf_token" and errors:
            return errors[0] if isinstance(errors[0], str) else None
    return None
