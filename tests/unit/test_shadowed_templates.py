"""Flask-Admin templates we shadow for the Content-Security-Policy (README "Security headers")
and for accessibility (README "Accessibility").

Each copy in admin_views/templates is the installed Flask-Admin template with its inline event
handlers replaced by data- attributes (admin.js does the rest), or its <html> given the page's
language, and a comment on top — nothing else. After a Flask-Admin upgrade this fails until the copies are refreshed from the new
templates with the same replacements (or dropped, once Flask-Admin has no onclick= left:
pallets-eco/flask-admin#2556).
"""

from __future__ import annotations

import re
from pathlib import Path

import flask_admin
import pytest

OURS = Path(__file__).resolve().parents[2] / "admin_views" / "templates"
THEIRS = Path(flask_admin.__file__).parent / "templates" / "bootstrap4"
HEADER = re.compile(r"\A\{#-.*?-#\}\n", re.S)

SHADOWED = {
    "admin/actions.html": [
        ("""onclick="return modelActions.execute('{{ p[0] }}');">""", """data-model-action="{{ p[0] }}">"""),
    ],
    "admin/model/row_actions.html": [
        ("""<form class="icon" method="POST" action="{{ get_url('.delete_view') }}">""",
         """<form class="icon" method="POST" action="{{ get_url('.delete_view') }}" """
         """data-confirm="{{ _gettext('Are you sure you want to delete this record?') }}">"""),
        ("""<button onclick="return faHelpers.safeConfirm('{{ _gettext('Are you sure you want to delete this """
         """record?') }}');" title=""", """<button title="""),
    ],
    "admin/base.html": [
        ("<html>\n", '<html lang="zh-CN">\n'),
    ],
    "admin/model/layout.html": [
        (''' class="dropdown-item filter" onclick="return false;">''', ''' class="dropdown-item filter">'''),
    ],
}


@pytest.mark.parametrize("name", sorted(SHADOWED))
def test_a_shadowed_template_is_flask_admins_without_its_inline_handlers(name):
    expected = (THEIRS / name).read_text(encoding="utf-8")
    for old, new in SHADOWED[name]:
        assert expected.count(old) == 1, f"Flask-Admin's {name} changed: refresh our copy ({old!r})"
        expected = expected.replace(old, new)
    ours = (OURS / name).read_text(encoding="utf-8")
    assert HEADER.match(ours), f"{name}: the comment saying why it is shadowed"
    assert HEADER.sub("", ours, count=1) == expected


@pytest.mark.parametrize("name", sorted(SHADOWED))
def test_no_shadowed_template_keeps_an_inline_handler(name):
    body = HEADER.sub("", (OURS / name).read_text(encoding="utf-8"), count=1)
    assert not re.search(r"\son[a-z]+=", body)
