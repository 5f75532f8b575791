"""What the views' WTForms forms share (ARCHITECTURE: admin_views/).

Every POST a view reads is a ``FlaskForm`` declared in the view's module, with the field names
the templates post (CSRFProtect has checked the token, app-wide, before any view runs). Fields
whose rules live in workflows.* (one rule, one place: 企业注册, 用户, 机构资料, 考生, 证书格式,
企业信息, 证书变更) are declared without validators of their own and handed to the workflow —
``values(form)`` every text field, ``TypedForm.typed()`` only those the POST carried: its Chinese
messages come back field by field.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField


class TypedForm(FlaskForm):
    def typed(self) -> dict:
        """The fields the POST carried, with their values: what the workflows read (a field left
        out is not in it, as in the request) and what fills the page again ({} before a POST)."""
        if not self.is_submitted():
            return {}
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token" and field.raw_data}

    def first_error(self) -> str | None:
        """The first message of ``validate()``'s refusals, in the order the fields are declared."""
        for name, errors in self.errors.items():
            if name != "csrf_token" and errors:
                return errors[0]
        return None


class RowForm(TypedForm):
    """A button on one row's page: the row's ``id`` (forged or foreign ids are a 404 where it is
    loaded through visibility, as every read)."""

    id = StringField()


def values(form: FlaskForm) -> dict[str, str]:
    """What was typed into ``form``'s text fields, for a workflows function that checks them
    field by field (and for the page that shows them again): no token, never None."""
    return {field.name: field.data if field.data is not None else "" for field in form
            if isinstance(field, StringField) and field.name != "csrf_token"}
