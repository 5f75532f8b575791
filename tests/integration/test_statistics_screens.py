"""首页 chart (003 §三) and 统计分析 (003 §八.4, SPEC §8, §11) through the browser.

Expected counts are computed here straight from the certificate table, not through
``workflows.statistics`` or ``workflows.visibility``.
"""

from __future__ import annotations

import html as htmlmod
import io
import re

import openpyxl
from sqlalchemy import func, select

from models import AuditLog, Certificate, Occupation, Organization
from models.base import local_today
from models.org import OrgKind
from tests.factories import org, user
from workflows.audit import Kind
from workflows.engine import setting_state

BAR_RE = re.compile(r'<g class="bar" data-label="([^"]+)" data-value="(\d+)">')
ROW_RE = re.compile(r'<tr data-key="([^"]+)"><td>([^<]*)</td><td class="text-right">(\d+)</td></tr>')
ALERT_RE = re.compile(r'class="alert[^"]*"[^>]*>([\s\S]*?)</div>')
CITY_LINK_RE = re.compile(r'<a href="([^"]*\bcity=[^"]*)" class="bar-link">')


def page(client, url="/admin/statistics/"):
    resp = client.get(url)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def rows(html) -> dict[str, int]:
    return {htmlmod.unescape(name): int(count) for _key, name, count in ROW_RE.findall(html)}


def alerts(html) -> str:
    return " ".join(re.sub(r"<[^>]+>|&times;", "", a).strip() for a in ALERT_RE.findall(html))


def chart(html, chart_id):
    start = html.find(f'<svg id="{chart_id}"')
    assert start >= 0, f"no #{chart_id}"
    svg = html[start:html.find("</svg>", start)]
    return [(label, int(value)) for label, value in BAR_RE.findall(svg)], svg


def count_by_authority(session, **where) -> dict[int | None, int]:
    stmt = select(Certificate.authority_id, func.count()).group_by(Certificate.authority_id)
    for column, value in where.items():
        stmt = stmt.where(getattr(Certificate, column) == value)
    return dict(session.execute(stmt).all())


# -- 首页 --------------------------------------------------------------------------------------

def test_province_home_draws_six_months_without_any_external_resource(session, login):
    html = page(login("province"), "/admin/")
    bars, svg = chart(html, "issued-chart")
    assert len(bars) == 6
    today = local_today()
    assert bars[-1][0] == f"{today:%Y-%m}"
    this_month = session.scalar(select(func.count()).select_from(Certificate).where(
        Certificate.issue_date >= today.replace(day=1)))
    assert bars[-1][1] == this_month > 0
    # the title says what the bars count: every certificate issued, the cancelled and voided too
    assert "<title>" in svg and 'role="img"' in svg and "aria-label=\"近6个月发证数量（含已注销、已作废）：" in svg
    assert "近6个月发证数量（含已注销、已作废）" in html
    assert not re.search(r"https?://", html), re.findall(r".{40}https?://.{40}", html)
    assert 'id="home-cards"' in html and "有效证书总数" in html  # the cards are still there


def test_institution_home_counts_its_own_certificates_and_enterprise_has_no_chart(session, login):
    bars, _ = chart(page(login("inst_jinan"), "/admin/"), "issued-chart")
    own = session.scalar(select(func.count()).select_from(Certificate).where(
        Certificate.issuer_id == user(session, "inst_jinan").organization_id,
        Certificate.issue_date >= local_today().replace(day=1)))
    assert bars[-1][1] == own
    assert 'id="issued-chart"' not in page(login("enterprise"), "/admin/")


# -- 统计分析 -----------------------------------------------------------------------------------

def test_province_sees_every_city_with_its_count(session, login):
    html = page(login("province"))
    expected = count_by_authority(session)
    cities = session.scalars(select(Organization).where(Organization.kind == OrgKind.authority)).all()
    got = rows(html)
    assert len(got) == len(cities) + 1
    for city in cities:
        assert got[city.name] == expected.get(city.id, 0), city.name
    assert got["省直所"] == expected.get(None, 0) > 0
    assert got["济南市住房和城乡建设局"] > 0
    bars, svg = chart(html, "city-chart")
    assert ("济南市", got["济南市住房和城乡建设局"]) in bars and len(bars) == len(got)
    assert len(CITY_LINK_RE.findall(html)) == len(got)  # each bar chooses its city
    assert 'role="group"' in svg and 'role="img"' not in svg  # links to click: no image (WCAG 4.1.2)


def test_choosing_jinan_lists_its_institutions(session, login):
    client = login("province")
    jinan = org(session, "SD370100")
    html = page(client, f"/admin/statistics/?city={jinan.id}")
    own = dict(session.execute(select(Certificate.issuer_id, func.count()).where(
        Certificate.authority_id == jinan.id).group_by(Certificate.issuer_id)).all())
    institutions = session.scalars(select(Organization).where(
        Organization.parent_id == jinan.id, Organization.kind == OrgKind.institution)).all()
    assert rows(html) == {i.name: own.get(i.id, 0) for i in institutions}
    assert "培训机构" in html and "返回全部城市" in html
    authorities = session.scalar(select(func.count()).select_from(Organization).where(
        Organization.kind == OrgKind.authority))
    assert len(chart(html, "city-chart")[0]) == authorities + 1  # the chart still shows every city and 省直所
    direct = rows(page(client, "/admin/statistics/?city=direct"))
    assert direct == {"山东省建设职业技能鉴定指导中心": count_by_authority(session)[None]}


def test_filters_by_date_range_and_occupation(session, login):
    client = login("province")
    future = page(client, "/admin/statistics/?date_from=2099-01-01&date_to=2099-12-31")
    assert set(rows(future).values()) == {0}
    assert 'value="2099-01-01"' in future
    today = local_today().isoformat()
    assert rows(page(client, f"/admin/statistics/?date_from={today}&date_to={today}")) == rows(page(client))
    carpentry = session.scalar(select(Occupation).where(Occupation.name == "木工"))
    html = page(client, f"/admin/statistics/?occupation={carpentry.id}")
    expected = count_by_authority(session, occupation_id=carpentry.id)
    assert rows(html)["省直所"] == expected.get(None, 0) > 0
    assert rows(html)["济南市住房和城乡建设局"] == expected.get(org(session, "SD370100").id, 0)
    assert f'<option value="{carpentry.id}" selected>' in html


def test_bad_filters_are_dropped_with_a_chinese_message(login):
    client = login("province")
    plain = rows(page(client))
    for url, message in [
        ("/admin/statistics/?date_from=2026-13-45", "开始日期格式不正确"),
        ("/admin/statistics/?date_to=abc", "结束日期格式不正确"),
        ("/admin/statistics/?date_from=2026-05-01&date_to=2026-01-01", "开始日期不能晚于结束日期"),
        ("/admin/statistics/?occupation=99999", "所选职业(工种)不存在"),
        ("/admin/statistics/?occupation=1%20OR%201=1", "所选职业(工种)不存在"),
        ("/admin/statistics/?city=99999999", "所选城市不存在或无权查看"),
        ("/admin/statistics/?city=1;DROP", "所选城市不存在或无权查看"),
    ]:
        html = page(client, url)
        assert message in alerts(html), url
        assert rows(html) == plain, url


def test_an_authority_sees_only_its_city(session, login):
    client = login("jinan")
    jinan, qingdao = org(session, "SD370100"), org(session, "SD370200")
    html = page(client)
    assert rows(html) == {jinan.name: count_by_authority(session)[jinan.id]}
    assert [label for label, _ in chart(html, "city-chart")[0]] == ["济南市"]
    forged = page(client, f"/admin/statistics/?city={qingdao.id}")
    assert "所选城市不存在或无权查看" in alerts(forged)
    assert "青岛" not in forged.split('id="statistics-table"')[1]
    assert "青岛" not in page(client, "/admin/statistics/?city=direct").split('id="statistics-table"')[1]
    wb = openpyxl.load_workbook(io.BytesIO(client.get(f"/admin/statistics/export.xlsx?city={qingdao.id}").data))
    assert not any("青岛" in str(v) for row in wb.active.iter_rows(values_only=True) for v in row)


def test_institutions_and_enterprises_are_refused(login):
    for username in ("inst_jinan", "enterprise", "direct_inst"):
        client = login(username)
        assert client.get("/admin/statistics/").status_code == 403, username
        assert client.get("/admin/statistics/export.xlsx").status_code == 403, username


def test_export_streams_the_table_shown_and_is_logged(session, login):
    client = login("province")
    jinan = org(session, "SD370100")
    resp = client.get("/admin/statistics/export.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ws = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == ("城市", "发证数量")
    assert dict(values[1:]) == rows(page(client))
    assert ws["A2"].data_type == "s" and ws["A2"].number_format == "@"

    resp = client.get(f"/admin/statistics/export.xlsx?city={jinan.id}&date_from=2020-01-01&date_to={local_today()}")
    values = list(openpyxl.load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert values[0] == ("培训机构", "发证数量")
    assert dict(values[1:]) == rows(page(client, f"/admin/statistics/?city={jinan.id}"))
    logs = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.EXPORT,
                                                  AuditLog.object_type == "statistics")).all()
    assert len(logs) == 2
    assert "统计分析" in logs[-1].summary and jinan.name in logs[-1].summary
    assert logs[-1].user_id == user(session, "province").id


CARD_RE = re.compile(r'data-label="有效证书总数">\s*<div class="card-body">\s*<div class="text-muted">有效证书总数</div>\s*'
                     r'<div class="h3 mb-0">(\d+)</div>')


def test_home_totals_are_counted_again_after_home_figures_seconds(session, login, monkeypatch):
    """有效证书总数 and the chart are kept HOME_FIGURES_SECONDS (60) per organization (a million-row
    count on every 首页 of the province was 29 ms of PostgreSQL); then counted again."""
    import time

    client = login("province")
    shown = int(CARD_RE.search(page(client, "/admin/")).group(1))
    valid = session.scalar(select(func.count()).select_from(Certificate).where(Certificate.status == "valid"))
    assert shown == valid
    one = session.scalars(select(Certificate).where(Certificate.status == "valid")).first()
    with setting_state():
        one.status = "cancelled"
    session.commit()
    assert int(CARD_RE.search(page(client, "/admin/")).group(1)) == valid  # kept
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    assert int(CARD_RE.search(page(client, "/admin/")).group(1)) == valid - 1
    # another organization's figures were never the province's
    jinan = int(CARD_RE.search(page(login("jinan"), "/admin/")).group(1))
    assert jinan < valid - 1
