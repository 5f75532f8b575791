"""The public verification API (issue 20 item 2, first part): the same answer as 证书查询, the same
rate limit, no oracle; errors as problem+json in Chinese; every response valid against the
OpenAPI document the app publishes (checked with openapi-core, not with the code that wrote it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Certificate, CertificateStatus
from workflows import ecert

PROBLEM = "application/problem+json"


@pytest.fixture
def client(app):
    return app.test_client()


def valid_certificate(session) -> Certificate:
    return session.scalars(select(Certificate).where(Certificate.status == CertificateStatus.valid)
                           .order_by(Certificate.id)).first()


def test_the_document_describes_the_endpoints_in_chinese(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["info"]["title"] == "建设行业人员证书管理 API"
    operation = document["paths"]["/api/v1/verify/certificate"]["get"]
    assert "证书编号" in operation["summary"] + operation.get("description", "")
    card = document["components"]["schemas"]["CertificateCard"]["properties"]
    assert card["holder_name"]["description"].startswith("持证人姓名")
    assert PROBLEM in operation["responses"]["404"]["content"]


def test_number_and_name_give_the_masked_card(client, session, contract):
    cert = valid_certificate(session)
    resp = contract(client.get("/api/v1/verify/certificate", query_string={
        "number": cert.number, "name": cert.person.name}))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.json
    assert body["number"] == cert.number and body["status"] == "valid" and body["status_label"] == "有效"
    assert body["holder_name"].startswith(cert.person.name[0]) and "*" in body["holder_name"]
    assert cert.person.id_number not in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_wrong_name_and_an_unknown_number_answer_the_same(client, session, contract):
    cert = valid_certificate(session)
    wrong = contract(client.get("/api/v1/verify/certificate", query_string={"number": cert.number, "name": "不是他"}))
    unknown = contract(client.get("/api/v1/verify/certificate",
                                  query_string={"number": "999999999999999", "name": cert.person.name}))
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.mimetype == PROBLEM and wrong.get_data() == unknown.get_data()
    assert "未查询到匹配的证书" in wrong.json["detail"]


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"number": "263701001510001"}, "name", "缺少必填参数"),
    ({"number": "1", "name": "张三", "extra": "x"}, "extra", "不支持的参数"),
    ({"number": "1" * 33, "name": "张三"}, "number", "长度超出范围"),
    ({"number": "", "name": "张三"}, "number", "长度超出范围"),
])
def test_bad_input_is_a_422_problem_in_chinese(client, contract, query, field, message):
    resp = contract(client.get("/api/v1/verify/certificate", query_string=query))
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    assert resp.json["errors"]["query"][field] == [message]
    assert resp.json["title"] == "参数不正确" and "参数" in resp.json["detail"]


def test_the_electronic_identifier_gives_the_card_and_its_issue(client, session, contract, app):
    cert = valid_certificate(session)
    issued = ecert.current(session, cert)
    session.commit()
    resp = contract(client.get(f"/api/v1/verify/electronic/{issued.identifier}"))
    assert resp.status_code == 200
    assert resp.json["electronic"] == {"current": True, "label": "有效", "since": None}
    forged = issued.identifier[:-1] + ("A" if issued.identifier[-1] != "A" else "B")
    resp = contract(client.get(f"/api/v1/verify/electronic/{forged}"))
    assert resp.status_code == 404 and "证照标识" in resp.json["detail"]


def test_the_limit_is_the_pages_limit(client, app, session, contract):
    app.config["VERIFY_RATE_LIMIT"] = 2
    cert = valid_certificate(session)
    assert client.get("/verify").status_code == 200
    client.post("/verify", data={})  # a page view without a lookup does not count
    for _ in range(2):
        contract(client.get("/api/v1/verify/certificate", query_string={"number": cert.number, "name": "x"}))
    resp = contract(client.get("/api/v1/verify/certificate", query_string={"number": cert.number, "name": "x"}))
    assert resp.status_code == 429 and resp.mimetype == PROBLEM and int(resp.headers["Retry-After"]) >= 1
    assert resp.json["detail"] == "查询过于频繁，请稍后再试"


def test_unknown_paths_and_methods_are_problems_and_the_back_office_keeps_its_pages(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.mimetype == PROBLEM and resp.json["status"] == 404
    resp = client.post("/api/v1/verify/certificate")
    assert resp.status_code == 405 and resp.mimetype == PROBLEM and "请求方法" in resp.json["detail"]
    page = client.get("/admin/nothing-here")
    assert page.status_code == 404 and page.mimetype == "text/html"
