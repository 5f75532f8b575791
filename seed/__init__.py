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


@seed_cli.command("scale")
@click.option("--certificates", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Certificates the scale data set should hold.")
@click.option("--seed", "random_seed", type=int, default=7, show_default=True, help="Seed of the random generator.")
def seed_scale(certificates, random_seed):
    """Build (or top up) a province-scale data set beside the data there (SPEC §12)."""
    from models import db
    from seed.scale import build_scale

    db.session.remove()  # the load runs on a connection of its own
    build_scale(db.engine, certificates, seed=random_seed, echo=click.echo)


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_cli)
