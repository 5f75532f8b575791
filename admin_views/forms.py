"""What the hand-written forms of the screens share: a ``FlaskForm`` (the CSRF token Flask-WTF and
CSRFProtect both check) that gives back what was typed, to fill the page again after a refusal.

The rules on the values — required, lengths, formats — are the workflows' (one place, their
Chinese messages); a form only names its fields and carries them there."""

from __future__ import annotations

from flask_wtf import FlaskForm


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
