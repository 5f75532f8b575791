"""Issue 17 item 11 on PostgreSQL: 操作日志's search (the union of bounded, ordered subqueries, a
LIKE with its escape) and a record's 数据维护 history answer as on SQLite."""

from __future__ import annotations

import html
from datetime import datetime

from sqlalchemy import select

from models import AuditLog, Certificate, db
from tests.conftest import DEMO_PASSWORD, Browser
from tests.factories import make_audit, user


def test_search_and_history_on_postgresql(pg_app):
    def login(username):
        return Browser(pg_app.test_client(), pg_app).login(username, DEMO_PASSWORD)

    me = user(db.session, "province")
    found = make_audit(db.session, me, "数据维护：人员「欧阳测试 370102199001010012」修改姓名")
    old = make_audit(db.session, me, "日志-欧阳旧名_50%")
    old.created_at = datetime(2099, 1, 1, 1, 0, 0)
    db.session.commit()
    client = login("province")
    text = html.unescape(client.get("/admin/audit_log/?search=欧阳测试").get_data(as_text=True))
    assert found.summary in text
    text = html.unescape(client.get("/admin/audit_log/?search=旧名_50%25&start=2099-01-01").get_data(as_text=True))
    assert old.summary in text
    assert "jinan" in client.get("/admin/audit_log/?search=jinan").get_data(as_text=True).split("model-list")[1]

    cert = db.session.scalars(select(Certificate).order_by(Certificate.id)).first()
    url = f"/admin/data_fix/edit/?certificate_id={cert.id}"
    client.post(url, {"certificate_id": str(cert.id), "issue_date": "2020-02-03",
                      "valid_until": cert.valid_until.isoformat() if cert.valid_until else "",
                      "endorsement_count": str(cert.endorsement_count), "reason": "发证日期录入错误"}, token_from=url)
    page = client.get(f"/admin/certificate_library/details/?id={cert.id}").get_data(as_text=True)
    assert "发证日期录入错误" in page.split('id="datafix-history"')[1]
    fixed = db.session.scalars(select(AuditLog).where(AuditLog.kind == "data_fix")).one()
    assert fixed.ip == "127.0.0.1"
