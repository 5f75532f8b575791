"""统计分析 (003 §八.4, SPEC §8): certificates issued per city as a bar chart; choosing a city
lists its institutions; filters by date range and occupation; 导出 as .xlsx (SPEC §11).

The province sees every city; an authority that opens it sees only its own city — the
counts go through ``workflows.visibility`` (``workflows.statistics``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from flask import flash, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select

from admin_views.access import AccessMixin, client_ip
from admin_views.exporting import XLSX_MIMETYPE, export_done, file_response, temp_file_path
from models import Occupation, db
from models.base import local_today
from models.org import OrgKind
from models.user import Permission
from workflows.audit import Kind, log
from workflows.excel import write_xlsx
from workflows.statistics import issued_per_city, issued_per_institution

DIRECT_KEY = "direct"  # ?city=direct: the 省直所, whose certificates have no city authority


@dataclass
class Filters:
    date_from: date | None = None
    date_to: date | None = None
    occupation_id: int | None = None
    city: str | None = None  # the chosen city as in the URL: an authority id or DIRECT_KEY

    def args(self, **override) -> dict:
        """The query string that reproduces these filters (links, export)."""
        values = {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "occupation": self.occupation_id,
            "city": self.city,
        }
        values.update(override)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _date_arg(name: str, label: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash(f"{label}格式不正确（应为 YYYY-MM-DD），已忽略", "error")
        return None


def read_filters(occupations: dict[int, str]) -> Filters:
    """The GET filters; bad dates, unknown occupations and malformed cities are dropped with a message."""
    f = Filters(date_from=_date_arg("date_from", "开始日期"), date_to=_date_arg("date_to", "结束日期"))
    if f.date_from and f.date_to and f.date_from > f.date_to:
        flash("开始日期不能晚于结束日期，日期条件已忽略", "error")
        f.date_from = f.date_to = None
    raw = (request.args.get("occupation") or "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = None
        if wanted in occupations:
            f.occupation_id = wanted
        else:
            flash("所选职业(工种)不存在，已忽略", "error")
    city = (request.args.get("city") or "").strip()
    if city:
        if city == DIRECT_KEY or (city.isdigit() and len(city) < 12):
            f.city = city
        else:
            flash("所选城市不存在或无权查看", "error")
    return f


class StatisticsView(AccessMixin, BaseView):
    """证书生成统计: the bar chart always shows the cities; the table follows the chosen city."""

    kinds = (OrgKind.province, OrgKind.authority)
    permission = Permission.statistics

    def _occupations(self) -> dict[int, str]:
        return dict(db.session.execute(select(Occupation.id, Occupation.name).order_by(Occupation.code)).all())

    def _table(self, f: Filters):
        """(cities, chosen city row or None, rows of the table, first column's title)."""
        cities = issued_per_city(db.session, current_user, f.date_from, f.date_to, f.occupation_id)
        chosen = None
        if f.city is not None:
            chosen = next((c for c in cities if str(c.key) == f.city), None)
            if chosen is None:
                flash("所选城市不存在或无权查看", "error")
                f.city = None
        if chosen is None:
            return cities, None, cities, "城市"
        authority_id = None if chosen.key == DIRECT_KEY else chosen.key
        rows = issued_per_institution(db.session, current_user, authority_id, f.date_from, f.date_to,
                                      f.occupation_id)
        return cities, chosen, rows, "培训机构"

    @expose("/")
    def index(self):
        occupations = self._occupations()
        f = read_filters(occupations)
        cities, chosen, rows, first_title = self._table(f)
        bars = [(c.label, c.count, url_for(".index", **f.args(city=str(c.key)))) for c in cities]
        return self.render("statistics/index.html", filters=f, occupations=occupations, bars=bars, rows=rows,
                           chosen=chosen, first_title=first_title, total=sum(r.count for r in rows),
                           export_url=url_for(".export_view", **f.args()),
                           all_cities_url=url_for(".index", **f.args(city=None)))

    @expose("/export.xlsx")
    def export_view(self):
        """导出: the table shown for the same arguments, streamed in constant memory."""
        f = read_filters(self._occupations())
        _cities, chosen, rows, first_title = self._table(f)
        scope = chosen.name if chosen is not None else "各城市"
        log(db.session, current_user, Kind.EXPORT, f"导出统计分析（{scope}）：{len(rows)} 条",
            object_type=self.endpoint, detail=f.args(), ip=client_ip())
        db.session.commit()
        data = [(r.name, r.count) for r in rows]
        path = temp_file_path("statistics-")
        try:
            write_xlsx(path, [first_title, "发证数量"], data, sheet_name="证书生成统计", text_columns={0})
        except BaseException:
            os.unlink(path)
            raise
        return export_done(file_response(path, f"证书生成统计-{local_today():%Y%m%d}.xlsx", XLSX_MIMETYPE), len(rows))


def register(admin) -> None:
    """Adds this module's views to the admin."""
    admin.add_view(StatisticsView(name="统计分析", category="统计分析", endpoint="statistics",
                                  url="/admin/statistics"))

