"""The 操作 column of every list (issue 17 item 1): a header, labelled buttons in the manual's words
offering exactly what the user may do to that row now, no bare eye or pencil icon, and bulk
actions under 「批量操作」."""

from __future__ import annotations

from html.parser import HTMLParser

from flask_admin.contrib.sqla import ModelView
from sqlalchemy import select

from models import Certificate, Registration, RegistrationStatus, User
from models.certificate import CertificateStatus
from tests.factories import batch_in_state, issued_certificates, user
from workflows.certificate import CERTIFICATE
from workflows.privacy import mask_id_number
from workflows.registration import REGISTRATION

ACCOUNTS = ("province", "province_reviewer", "jinan", "inst_jinan", "direct_inst", "enterprise", "school",
            "person_zhao", "ministry")


class ListPage(HTMLParser):
    """The list table of a page: its header cells and, per body row, its text and its 操作 buttons."""

    def __init__(self, html: str):
        super().__init__()
        self.headers, self.rows = [], []
        self._in_table = self._in_head = False
        self._cell = None
        self._op = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "table" and "model-list" in classes:
            self._in_table = True
        elif not self._in_table:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "th":
            self._cell = []
        elif tag == "tr" and not self._in_head:
            self.rows.append({"text": "", "ops": []})
        elif tag == "td":
            self._cell = []
        elif tag in ("a", "button") and "row-op" in classes or (tag == "button" and "row-delete" in classes):
            self._op = {"href": attrs.get("href"), "class": classes, "label": ""}

    def handle_endtag(self, tag):
        if not self._in_table:
            return
        if tag == "table":
            self._in_table = False
        elif tag == "thead":
            self._in_head = False
        elif tag == "th" and self._cell is not None:
            self.headers.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "td" and self._cell is not None and self.rows:
            self.rows[-1]["text"] += " " + "".join(self._cell).strip()
            self._cell = None
        elif tag in ("a", "button") and self._op is not None:
            self._op["label"] = self._op["label"].strip()
            self.rows[-1]["ops"].append(self._op)
            self._op = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._op is not None:
            self._op["label"] += data

    def row(self, text: str) -> dict:
        found = [r for r in self.rows if text in r["text"]]
        assert len(found) == 1, f"{len(found)} rows hold {text!r}: {[r['text'] for r in self.rows]}"
        return found[0]

    def labels(self, text: str) -> list[str]:
        return [op["label"] for op in self.row(text)["ops"]]


def page(browser, url) -> tuple[str, ListPage]:
    resp = browser.get(url)
    assert resp.status_code == 200, url
    html = resp.get_data(as_text=True)
    return html, ListPage(html)


def shown(person) -> str:
    """How a list row reads its person: the name and the masked ID number (issue 17 item 15)."""
    return f"{person.name} {mask_id_number(person.id_number)}"


def list_views(app):
    """Every model view whose index is a list (我的基本信息's is the individual's one record)."""
    return [v for v in app.extensions["admin"][0]._views
            if isinstance(v, ModelView) and not getattr(v, "own_record", False)]


def test_every_list_has_a_labelled_operations_column_and_a_batch_menu(app, login):
    """Every list any demo account opens: 操作 is the last header and each row's buttons are
    labelled; no eye or pencil icon anywhere; the bulk menu reads 批量操作, never 选中的."""
    seen = set()
    for username in ACCOUNTS:
        browser = login(username)
        for view in list_views(app):
            resp = browser.get(f"/admin/{view.endpoint}/")
            if resp.status_code != 200:
                continue
            html = resp.get_data(as_text=True)
            listed = ListPage(html)
            assert "fa-eye" not in html and "fa-pencil" not in html, view.endpoint
            assert "选中的" not in html and "With selected" not in html, view.endpoint
            if 'data-model-action="' in html:
                assert 'id="bulk-actions"' in html and ">批量操作</a>" in html, view.endpoint
            if view.column_display_actions:
                assert listed.headers[-1] == "操作", (view.endpoint, listed.headers)
                assert listed.headers.count("操作") == 1, (view.endpoint, listed.headers)
                for row in listed.rows:
                    assert all(op["label"] for op in row["ops"]), (view.endpoint, row)
                    if row["ops"]:
                        seen.add(view.endpoint)
    # the check had teeth: rows with buttons were seen on the lists the demo fills
    assert {"batch", "batch_review", "certificate", "certificate_library", "business_apply", "application",
            "registration_manage", "registration_review", "registered", "authority_manage", "user_manage",
            "audit_log"} <= seen


def test_a_batch_waiting_for_its_authority_shows_review_to_it_and_not_to_the_institution(session, login):
    batch = batch_in_state(session, "inst_jinan", "authority_review", name="操作列测试批次")
    _, authority = page(login("jinan"), "/admin/batch_review/?tab=pending")
    assert authority.labels("操作列测试批次") == ["详情", "审核", "审核日志"]
    review = authority.row("操作列测试批次")["ops"][1]
    assert review["href"].startswith(f"/admin/batch_review/details/?id={batch.id}")
    assert review["href"].endswith("#btn-authority_approve")
    _, institution = page(login("inst_jinan"), "/admin/batch/?tab=reviewing")
    assert institution.labels("操作列测试批次") == ["详情", "审核日志"]


def test_the_review_button_opens_the_details_page_at_its_buttons(session, login):
    """审核 never posts from the list: it opens the details page, where 审核通过 and 审核不通过
    (with its reason) are."""
    batch = batch_in_state(session, "inst_jinan", "authority_review", name="操作列详情批次")
    browser = login("jinan")
    _, listed = page(browser, "/admin/batch_review/?tab=pending")
    href = listed.row("操作列详情批次")["ops"][1]["href"]
    details = browser.get(href.split("#")[0]).get_data(as_text=True)
    assert 'id="btn-authority_approve"' in details and 'id="btn-authority_reject"' in details
    assert session.get(type(batch), batch.id).status.value == "authority_review"  # nothing fired


def test_a_draft_batch_offers_its_institution_edit_submit_and_delete(session, login):
    batch_in_state(session, "inst_jinan", "draft", name="操作列草稿批次")
    _, listed = page(login("inst_jinan"), "/admin/batch/?tab=draft")
    assert listed.labels("操作列草稿批次") == ["详情", "修改", "提交审核", "删除批次"]
    assert listed.row("操作列草稿批次")["ops"][1]["href"].endswith("#candidates")
    delete = listed.row("操作列草稿批次")["ops"][3]
    assert "btn-outline-danger" in delete["class"]


def test_registration_rows_offer_the_manuals_buttons(session, login):
    """004 §3.2: 查看; an unreported declaration 上报 and 退回 (each on the details page); a
    registered one only 查看. The province 受理s what waits for it, then 审查s it; the ministry
    has nothing to do with it before the province has forwarded it."""
    enterprise_id = user(session, "enterprise").organization_id
    mine = select(Registration).where(Registration.enterprise_id == enterprise_id).order_by(Registration.id)
    rows = session.scalars(mine).all()
    once = [r for r in rows if sum(o.person_id == r.person_id for o in rows) == 1]  # one row per ID number
    unreported = next(r for r in once if r.status == RegistrationStatus.unreported)
    approved = next(r for r in once if r.status == RegistrationStatus.approved)
    waiting = session.scalars(select(Registration).where(Registration.status == RegistrationStatus.province_unaccepted)
                              .order_by(Registration.id)).first()
    browser = login("enterprise")
    _, listed = page(browser, "/admin/registration_manage/?tab=unreported")
    number = shown(unreported.person)
    assert listed.labels(number) == ["查看", "上报", "退回"]
    assert listed.row(number)["ops"][1]["href"].endswith("#btn-report")
    assert 'id="btn-report"' in browser.get(listed.row(number)["ops"][1]["href"].split("#")[0]).get_data(
        as_text=True)
    _, listed = page(browser, "/admin/registration_manage/?tab=all")
    assert listed.labels(shown(approved.person)) == ["查看"]

    _, province = page(login("province"), "/admin/registration_review/?tab=unaccepted")
    assert province.labels(shown(waiting.person)) == ["详情", "受理"]
    REGISTRATION.fire(session, user(session, "province"), waiting, "province_accept")
    _, province = page(login("province"), "/admin/registration_review/?tab=accepted")
    assert province.labels(shown(waiting.person)) == ["详情", "审查"]
    _, ministry = page(login("ministry"), "/admin/registration_review/?tab=all")
    assert shown(waiting.person) not in " ".join(r["text"] for r in ministry.rows)  # not its turn yet


def test_the_certificate_library_offers_what_the_state_allows(session, login):
    valid, other = issued_certificates(session, "inst_jinan")[0], issued_certificates(session, "inst_jinan")[0]
    province = user(session, "province")
    CERTIFICATE.fire(session, province, other, "cancel")
    _, listed = page(login("province"), f"/admin/certificate_library/?search={valid.number}")
    assert listed.labels(valid.number) == ["详情", "注销", "作废", "下载电子证书"]
    _, listed = page(login("province"), f"/admin/certificate_library/?search={other.number}")
    assert listed.labels(other.number) == ["详情", "激活", "作废"]


def test_an_institution_sees_print_cancel_and_change_on_its_valid_certificates(session, login):
    """003 §六.2 证书查看: 查看详情 注销 变更 (and 打印证书, 下载电子证书); an authority reads and
    downloads."""
    valid = issued_certificates(session, "inst_jinan")[0]
    _, listed = page(login("inst_jinan"), f"/admin/certificate/?search={valid.number}")
    assert listed.labels(valid.number) == ["查看详情", "打印证书", "下载电子证书", "注销", "变更"]
    ops = {op["label"]: op["href"] for op in listed.row(valid.number)["ops"]}
    assert ops["变更"] == f"/admin/business_apply/change/?certificate_id={valid.id}"
    assert ops["打印证书"] == f"/admin/certificate/print/?id={valid.id}"
    _, authority = page(login("jinan"), f"/admin/certificate/?search={valid.number}")
    assert authority.labels(valid.number) == ["查看详情", "下载电子证书"]
    # a certificate no longer valid: nothing to file, nothing to print, no electronic certificate
    CERTIFICATE.fire(session, user(session, "province"), valid, "cancel")
    _, listed = page(login("inst_jinan"), f"/admin/certificate/?search={valid.number}")
    assert listed.labels(valid.number) == ["查看详情"]


def test_users_list_offers_edit_but_not_on_ones_own_row(session, login):
    _, listed = page(login("province"), "/admin/user_manage/")
    own = session.scalar(select(User).where(User.username == "province"))
    row = next(r for r in listed.rows if f" {own.username} " in r["text"] + " ")
    assert [op["label"] for op in row["ops"]] == ["详情"]
    other = next(r for r in listed.rows if r is not row)
    assert [op["label"] for op in other["ops"]][:2] == ["详情", "修改"]


def test_organizations_fold_their_links_into_the_one_operations_column(login):
    html, listed = page(login("province"), "/admin/authority_manage/")
    assert listed.headers.count("操作") == 1
    labels = listed.labels("济南市住房和城乡建设局")
    assert labels[:3] == ["详情", "修改", "下线"] and "删除" in labels and "下级机构" in labels


def test_a_list_without_row_operations_has_no_empty_column(login):
    """证书号段维护 is only read; 我的导出's one operation, 下载, is its own 操作 column."""
    browser = login("province")
    _, listed = page(browser, "/admin/segment/")
    assert listed.rows and "操作" not in listed.headers
    _, listed = page(browser, "/admin/my_export/")
    assert listed.headers.count("操作") == 1


def test_certificates_listed_only_valid_are_offered_applications(session, login):
    """申请业务: 变更 / 补办 / 注销 per valid certificate, routed to the certificate's own forms."""
    valid = issued_certificates(session, "inst_jinan")[0]
    _, listed = page(login("inst_jinan"), f"/admin/business_apply/?search={valid.number}")
    ops = {op["label"]: op["href"] for op in listed.row(valid.number)["ops"]}
    assert ops == {"变更": f"/admin/business_apply/change/?certificate_id={valid.id}",
                   "补办": f"/admin/business_apply/reissue/?certificate_id={valid.id}",
                   "注销": f"/admin/business_apply/cancel/?certificate_id={valid.id}"}
    assert session.get(Certificate, valid.id).status == CertificateStatus.valid
