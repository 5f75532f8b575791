"""打印 (003 §六.2) and 业务打印 (003 §六.3): the print-ready page, 证书格式设置 and the list of
approved name changes and reissues waiting to print.

The rules are in ``workflows.printing``; this module only renders and routes. The print page
loads every certificate through the view's visibility hook, and printing marks print status
through the ``PRINT`` table (POST only: opening the page never changes anything).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from admin_views.access import AccessMixin
from admin_views.actions import perform
from admin_views.forms import values
from admin_views.verify import qr_code
from models import db
from models.org import ISSUING_KINDS
from models.user import Permission
from workflows.printing import (
    FIELDS,
    LIMITS,
    MARKS,
    QR_CODE,
    default_layout,
    layout_for,
    may_print,
    may_print_certificate,
    print_certificates,
    save_format,
)

MAX_PER_PRINT = 200  # one print page; a bigger run is split by the user (and stays a readable page)


class FormatForm(FlaskForm):
    """证书格式设置: the paper, the font, and per print field ``on_``/``x_``/``y_<key>`` (added below
    from ``FIELDS``); workflows.printing.parse_layout checks every value against ``LIMITS``."""

    paper_width_mm = StringField()
    paper_height_mm = StringField()
    font_size_pt = StringField()
    qr_size_mm = StringField()


for _key in FIELDS:
    for _part in ("on", "x", "y"):
        setattr(FormatForm, f"{_part}_{_key}", StringField())


class PrintMixin:
    """打印证书 for a view over certificates: the list action and the print-ready page."""

    @action("print", "打印证书")
    def action_print(self, ids):
        return self.ask_more(ids, ".print_view")

    def is_action_allowed(self, name):
        if name == "print":
            return may_print(current_user)
        return super().is_action_allowed(name)

    def may_print_row(self, certificate) -> bool:
        """A valid certificate this user prints (a cancelled or voided one is never printed)."""
        return may_print_certificate(current_user, certificate)

    # 标记已打印 / 标记未打印 stay in 批量操作 and on the details page; the 操作 column offers 打印证书
    row_words = dict.fromkeys(MARKS)

    def row_links(self, row):
        links = super().row_links(row)
        if self.may_print_row(row):
            links.append(("打印证书", self.row_url(".print_view", row.id), "row-print"))
        return links

    def row_buttons(self, obj) -> list:
        """打印证书 on a printable certificate's details page."""
        buttons = super().row_buttons(obj)
        if self.may_print_row(obj):
            buttons.append(("btn-print", "打印证书", self.get_url(".print_view", id=obj.id)))
        return buttons

    @expose("/print/", methods=("GET", "POST"))
    def print_view(self):
        """GET: the print-ready page (nothing changes). POST: 打印 — marks each certificate 已打印
        through ``PRINT`` and reopens the page, which then opens the browser's print dialog."""
        if not may_print(current_user):
            abort(403)
        ids = request.values.getlist("id")
        back = self.get_url(".index_view")
        if len(ids) > MAX_PER_PRINT:
            flash(f"一次最多打印 {MAX_PER_PRINT} 张证书，请分批打印", "error")
            return redirect(back)
        rows = self.load_rows(ids)
        if not rows:
            abort(404)
        if request.method == "POST":
            done = perform(lambda: print_certificates(db.session, current_user, rows, ids))
            if not done:
                return redirect(back)
            result = done.value
            category = "success" if not result.failed else ("warning" if result.succeeded else "error")
            flash(f"打印：{result.summary()}", category)
            printed = [str(r.id) for r in result.succeeded]
            if not printed:
                return redirect(back)
            return redirect(self.get_url(".print_view", id=printed, autoprint=1))
        certificates = [rows[i] for i in dict.fromkeys(ids) if i in rows]
        refused = [c for c in certificates if not self.may_print_row(c)]
        printable = [c for c in certificates if c not in refused]
        layout = layout_for(db.session, current_user.organization_id)
        return self.render("printing/sheets.html", certificates=printable, refused=refused, fmt=layout,
                           qr_code=qr_code, QR_CODE=QR_CODE, autoprint=request.args.get("autoprint") == "1",
                           back=back)


class PrintFormatView(AccessMixin, BaseView):
    """证书格式设置: the institution's fields, their positions in mm, the font size; a preview."""

    kinds = tuple(ISSUING_KINDS)
    permission = Permission.certificate_print

    @expose("/", methods=("GET", "POST"))
    def index(self):
        typed = values(FormatForm()) if request.method == "POST" else None
        if typed is not None and perform(lambda: save_format(db.session, current_user, typed), "证书格式已保存"):
            return redirect(self.get_url(".index"))
        layout = layout_for(db.session, current_user.organization_id)
        return self.render("printing/format.html", fmt=layout, fields=FIELDS, form=typed, limits=LIMITS,
                           default=default_layout(), QR_CODE=QR_CODE)


def register(admin) -> None:
    admin.add_view(PrintFormatView(name="证书格式设置", category="证书管理", endpoint="print_format"))
