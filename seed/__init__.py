"""Demo and scale data, `flask seed …` commands (SPEC §12)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

seed_cli = AppGroup("seed", help="演示数据 (SPEC §12).")


@seed_cli.command("demo")
def seed_demo():
    """Build (or rebuild from scratch) the Shandong demo with its accounts."""
    from models import db
    from seed.demo import build_demo

    summary = build_demo(db.session, reset=True)
    db.session.commit()
    click.echo("演示数据已生成：" + "，".join(f"{k} {v}" for k, v in summary.items()))


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_cli)
