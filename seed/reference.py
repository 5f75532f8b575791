"""Reference data the demo and the scale seed create: occupations and levels (the cities are
``workflows.reference``'s, read at run time)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Level, Occupation

# SPEC §2: trades with levels, then site professional posts without levels.
OCCUPATIONS = [
    ("001", "砌筑工", True), ("002", "钢筋工", True), ("003", "混凝土工", True), ("004", "架子工", True),
    ("005", "焊工", True), ("006", "电工", True), ("007", "油漆工", True), ("008", "防水工", True),
    ("009", "木工", True), ("010", "抹灰工", True), ("011", "管工", True), ("012", "起重信号司索工", True),
    ("101", "施工员", False), ("102", "质量员", False), ("103", "安全员", False), ("104", "标准员", False),
    ("105", "材料员", False), ("106", "机械员", False), ("107", "劳务员", False), ("108", "资料员", False),
]
LEVELS = [
    ("5", "初级工(五级)"), ("4", "中级工(四级)"), ("3", "高级工(三级)"), ("2", "技师(二级)"), ("1", "高级技师(一级)"),
]


def ensure_reference(session: Session) -> tuple[dict, dict]:
    """Occupations and levels by name, created when missing."""
    have = {o.code: o for o in session.scalars(select(Occupation))}
    for code, name, has_levels in OCCUPATIONS:
        if code not in have:
            session.add(Occupation(code=code, name=name, has_levels=has_levels))
    have_levels = {lv.code: lv for lv in session.scalars(select(Level))}
    for code, name in LEVELS:
        if code not in have_levels:
            session.add(Level(code=code, name=name))
    session.flush()
    return (
        {o.name: o for o in session.scalars(select(Occupation))},
        {lv.name: lv for lv in session.scalars(select(Level))},
    )
