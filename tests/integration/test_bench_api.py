"""bench/api.py keeps working (it is run by hand at scale; here on the demo, a few requests of each
kind): public verification in-process and over HTTP, a bulk check with a key it makes, a full sync
page by page (one row a page, so every cursor is followed), and a short served run, all answered."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ApiKey, AuditLog, Certificate, Organization, db

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api.py"


def test_the_api_bench_runs_every_figure(app, capsys, tmp_path):
    # on a copy: the bench's own app and gunicorn never hold a connection to the shared test database file
    copy = tmp_path / "bench.db"
    db.session.remove()
    db.engine.dispose()
    shutil.copyfile(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), copy)
    spec = importlib.util.spec_from_file_location("bench_api", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    # the organization to sync: the one with the most certificates when none is near the target
    prepared = bench.make_app(f"sqlite:///{copy}", str(tmp_path))
    code, _, _, expected = bench.sync_org(prepared, None, 10_000)
    with prepared.app_context():
        most = db.session.execute(select(Organization.code, func.count()).join(Certificate, Certificate.issuer_id
                                  == Organization.id).group_by(Organization.code).order_by(func.count().desc())).first()
        db.engine.dispose()
    assert expected >= 2 and expected >= most[1], (code, expected, most)

    bench.run(f"sqlite:///{copy}", samples=10, bulk_size=10, bulk_runs=2, sync_target=10_000, page_limit=1,
              workers=1, threads=2, served_seconds=1)
    out = capsys.readouterr().out
    assert "VERIFY_RATE_LIMIT=1000000000" in out  # the raised limit is said
    assert re.search(r"1\. single verification, in-process, 10 certificates: wall p50 [\d.]+ ms.*not 200: 0", out), out
    assert re.search(r"over HTTP against gunicorn, one at a time, 10: .*not 200: 0", out), out
    assert re.search(r"2\. 批量核验 of 10 pairs .* 2 runs: .* found 10 of 10; errors 0", out), out
    synced = re.search(r"3\. full sync of .*\((\S+), .*, ([\d,]+) certificates by SQL\), limit=1: ([\d,]+) rows "
                       r"\(([\d,]+) distinct\) in (\d+) pages", out)
    assert synced and synced.group(1) == code, out
    assert synced.group(2) == synced.group(3) == synced.group(4) == f"{expected:,}" == synced.group(5), out
    served = re.search(r"4\. served: .*: ([\d,]+) requests, .* errors 0, 429 0", out)
    assert served and int(served.group(1).replace(",", "")) > 0, out
    table = out[out.index("\nfigure "):].splitlines()[2:]
    assert [line.split()[-1] for line in table[:5] if not line.startswith("  ")][:3] == ["yes", "yes", "yes"], out

    # its two keys are in 接口密钥, their calls in 操作日志 (one row per call)
    engine = create_engine(f"sqlite:///{copy}")
    with Session(engine) as session:
        keys = session.scalars(select(ApiKey).where(ApiKey.name.like("接口基准%"))).all()
        assert sorted(k.scope_codes[0] for k in keys) == ["certificates", "verify"]
        calls = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == "api"))
    engine.dispose()
    assert calls == 3 + expected  # 3 bulk calls (one warming), one page per row
