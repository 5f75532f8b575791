"""我的消息 (SPEC §8): transitions that concern a user reach them; the navigation bar counts the
unread ones; a user reads, marks and sees only their own."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from models import Batch, BatchStatus, Message, User

URL = "/admin/message/"


def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def user_of(session, username) -> User:
    return session.scalar(select(User).where(User.username == username))


def unread(session, username) -> int:
    return session.scalar(select(func.count()).select_from(Message).where(
        Message.user_id == user_of(session, username).id, Message.is_read.is_(False)))


def badge(html: str) -> int:
    found = re.search(r'id="unread-count">(\d+)<', html)
    return int(found.group(1)) if found else 0


def submit_a_draft(login, session) -> Batch:
    batch = session.scalar(select(Batch).where(Batch.status == BatchStatus.draft,
                                               Batch.institution.has(code="JG370101")).order_by(Batch.id))
    resp = login("inst_jinan").post("/admin/batch/transition/", {"id": batch.id, "transition": "submit"},
                                    follow_redirects=True)
    assert "操作成功" in flashes(resp), flashes(resp)
    return batch


def test_a_submitted_batch_reaches_the_reviewing_city_and_the_badge_counts_it(login, session):
    before = unread(session, "jinan")
    batch = submit_a_draft(login, session)
    assert unread(session, "jinan") == before + 1
    client = login("jinan")
    home = client.get("/admin/").get_data(as_text=True)
    assert badge(home) == before + 1 and 'href="/admin/message/"' in home
    page = client.get(URL).get_data(as_text=True)
    latest = session.scalars(select(Message).where(Message.user_id == user_of(session, "jinan").id)
                             .order_by(Message.id.desc())).first()
    assert latest.object_type == "batch" and latest.object_id == batch.id
    assert latest.title in page and "未读" in page


def test_marking_read_and_read_all(login, session):
    submit_a_draft(login, session)
    client = login("jinan")
    mine = session.scalars(select(Message).where(Message.user_id == user_of(session, "jinan").id,
                                                 Message.is_read.is_(False))).all()
    resp = client.post(f"{URL}action/", {"action": "mark_read", "rowid": [str(mine[0].id)]}, follow_redirects=True)
    assert "已将 1 条消息标为已读" in flashes(resp)
    assert unread(session, "jinan") == len(mine) - 1
    resp = client.post(f"{URL}read-all/", {}, follow_redirects=True)
    assert f"已将 {len(mine) - 1} 条消息标为已读" in flashes(resp)
    assert unread(session, "jinan") == 0 and badge(resp.get_data(as_text=True)) == 0


def test_nobody_reads_or_marks_another_users_message(login, session):
    submit_a_draft(login, session)
    theirs = session.scalars(select(Message).where(Message.user_id == user_of(session, "jinan").id)).first()
    for who in ("province", "inst_jinan", "qingdao", "person"):
        client = login(who)
        assert client.get(f"{URL}details/?id={theirs.id}").status_code == 404
        page = client.get(f"{URL}?tab=all").get_data(as_text=True)
        assert not re.search(rf"details/\?id={theirs.id}[&\"]", page)
        resp = client.post(f"{URL}action/", {"action": "mark_read", "rowid": [str(theirs.id)]}, follow_redirects=True)
        assert "所选消息不存在" in flashes(resp)
        client.post(f"{URL}read-all/", {})
    session.expire_all()
    assert session.get(Message, theirs.id).is_read is False


def test_an_individual_has_messages_too(login):
    assert login("person").get(URL).status_code == 200


def test_opening_a_message_reads_it_and_the_badge_follows(login, session):
    """Issue 17: 打开一条消息即为已读 — the details page, reached from the list's title, marks the
    owner's message read, and the navigation's count on that page is already one fewer."""
    submit_a_draft(login, session)
    client = login("jinan")
    before = unread(session, "jinan")
    assert before >= 1
    latest = session.scalars(select(Message).where(Message.user_id == user_of(session, "jinan").id,
                                                   Message.is_read.is_(False)).order_by(Message.id.desc())).first()
    listing = client.get(URL).get_data(as_text=True)
    link = re.search(rf'<a href="({re.escape(URL)}details/\?id={latest.id}[^"]*)" class="message-link">', listing)
    assert link and badge(listing) == before
    page = client.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200 and latest.title in page.get_data(as_text=True)
    assert badge(page.get_data(as_text=True)) == before - 1
    session.expire_all()
    assert session.get(Message, latest.id).is_read is True and unread(session, "jinan") == before - 1
    # opened again: still read, nothing counted twice
    assert badge(client.get(f"{URL}details/?id={latest.id}").get_data(as_text=True)) == before - 1
