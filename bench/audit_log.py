"""Time 操作日志 at a large log's scale (issue 17 item 11): the list, and its search by a username,
by a person's name that appears only in 内容 (recent, and old), as the province and an authority.

The search box matches 用户名 / 姓名 by prefix and, since issue 17, a name anywhere in 内容 by
LIKE '%…%' — over a bounded run of rows only (admin_views.logs.SUMMARY_SEARCH_ROWS: the newest,
or as many from the 开始日期 on), found by the primary key, so a search's cost stays flat however
large the log grows. This fills the log of the given database to ``--rows`` rows (sign-ins,
edits, data fixes naming persons, spread over two years) and prints p50/p90 per case.

    python bench/audit_log.py --database sqlite:////tmp/demo.db --rows 2000000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from app import create_app
from bench.lists import sign_in, timed
from models import AuditLog, User, db
from models.base import utcnow

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
OLD_NAME, RECENT_NAME = "欧阳旧名", "欧阳新名"  # each in exactly one summary: old, and recent


def fill(rows: int) -> None:
    have = db.session.scalar(select(func.count()).select_from(AuditLog))
    if have >= rows:
        return
    users = db.session.execute(select(User.id, User.username, User.organization_id)).all()
    rng, now, todo = random.Random(17), utcnow(), rows - have
    start = now - timedelta(days=730)
    step = timedelta(days=730) / todo
    batch = []
    for i in range(todo):
        uid, username, org = rng.choice(users)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        if i == 10:
            name = OLD_NAME
        elif i == todo - 10:
            name = RECENT_NAME
        kind, summary = rng.choice((("login_ok", "登录成功"), ("edit", f"修改考生 {name}（批次「某批次」）"),
                                    ("data_fix", f"数据维护：人员「{name} 370102199001010012」修改姓名（原因：录入错误）")))
        batch.append({"kind": kind, "user_id": uid, "username": username, "organization_id": org,
                      "summary": summary, "ip": "10.0.0.1", "created_at": start + step * i})
        if len(batch) == 20_000:
            db.session.execute(insert(AuditLog), batch)
            db.session.commit()
            batch = []
    if batch:
        db.session.execute(insert(AuditLog), batch)
        db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--roles", default="province,jinan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": args.database, "SECRET_KEY": "bench", "SMS_SHOW_CODE": False,
                          "SMS_OUTBOX_PATH": f"{tmp}/outbox.log", "IDLE_TIMEOUT_MINUTES": 600})
        with app.app_context():
            fill(args.rows)
            total = db.session.scalar(select(func.count()).select_from(AuditLog))
        print(f"audit_log rows: {total:,}")
        base = "/admin/audit_log/"
        old_day = (utcnow() - timedelta(days=730)).strftime("%Y-%m-%d")
        cases = [("first page", base), ("page 100", base + "?page=99"), ("search username", base + "?search=jinan"),
                 ("search recent name", base + "?search=" + quote(RECENT_NAME)),
                 ("search old name", base + "?search=" + quote(OLD_NAME)),
                 ("search old name+start", f"{base}?search={quote(OLD_NAME)}&start={old_day}"),
                 ("search absent name", base + "?search=" + quote("无此人名"))]
        print(f"{'role':<10} {'case':<24} {'p50 ms':>8} {'p90 ms':>8}  found")
        for role in args.roles.split(","):
            client = sign_in(app, role)
            for label, url in cases:
                page = client.get(url).get_data(as_text=True)
                name = OLD_NAME if "old" in label else RECENT_NAME if "recent" in label else None
                found = "yes" if name and any(f"{name}{tail}" in page for tail in ("（", " 3701")) else "-"
                p50, p90 = timed(lambda u=url, c=client: c.get(u), args.requests)
                print(f"{role:<10} {label:<24} {p50:8.1f} {p90:8.1f}  {found}")
        with app.app_context():
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
