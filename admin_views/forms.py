"""What the views' WTForms forms share (ARCHITECTURE: admin_views/).

Every POST a view reads is a ``FlaskForm`` declared in the view's module, with the field names
the templates post (CSRFProtect has checked the token, app-wide, before any view runs). Fields
whose rules live in workflows.* (one rule, one place: 企业注册, 用户, 机构资料, 考生, 证书格式)
are declared without validators of their own and handed to the workflow as ``values(form)``:
its Chinese messages come back field by field.
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
            if isinstance(field, StringField) and field.name != "csrf_token"}

