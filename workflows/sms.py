"""SMS senders (SPEC §9): pluggable, chosen by the ``SMS_SENDER`` setting.

The development sender appends every message to an outbox file, one line per message
(``<ISO time>\\t<phone>\\t<text>``), so a developer or a test reads the code from there.
A production gateway is one more class registered with ``@register_sender("name")``.
No Flask here: the configuration mapping and the instance folder are passed in.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

OUTBOX_FILENAME = "sms_outbox.log"
_LOCAL_TZ = ZoneInfo("Asia/Shanghai")

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The message could not be handed to the carrier."""


class Sender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


SenderFactory = Callable[[Mapping, "str | None"], Sender]
SENDERS: dict[str, SenderFactory] = {}


def register_sender(name: str):
    """Class or factory decorator: ``SMS_SENDER=<name>`` builds it with ``(config, instance_path)``."""

    def wrap(factory):
        SENDERS[name] = factory
        return factory

    return wrap


def _one_line(text: str) -> str:
    # The outbox is one message per line, tab-separated: a stray newline would split a message.
    return " ".join(str(text).replace("\t", " ").splitlines())


class OutboxSender:
    """Development sender: appends ``<ISO time>\\t<phone>\\t<text>`` to a file."""

    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path

    def send(self, phone: str, text: str) -> None:
        stamp = datetime.now(_LOCAL_TZ).isoformat(timespec="seconds")
        line = f"{stamp}\t{_one_line(phone)}\t{_one_line(text)}\n"
        try:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            # One short write in append mode: lines from several processes do not interleave.
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            raise SmsError(str(exc)) from exc


class LogSender:
    """Writes messages to the Python log only (e.g. a staging server without a gateway)."""

    def send(self, phone: str, text: str) -> None:
        logger.info("SMS to %s: %s", phone, text)


def outbox_path(config: Mapping, instance_path: str | None = None) -> str:
    """``SMS_OUTBOX_PATH`` if set, else ``<instance>/sms_outbox.log``."""
    path = config.get("SMS_OUTBOX_PATH")
    if path:
        return str(path)
    return os.path.join(instance_path or "instance", OUTBOX_FILENAME)


@register_sender("outbox")
def _outbox(config: Mapping, instance_path: str | None) -> Sender:
    return OutboxSender(outbox_path(config, instance_path))


@register_sender("log")
def _log(config: Mapping, instance_path: str | None) -> Sender:
    return LogSender()


def get_sender(config: Mapping, instance_path: str | None = None) -> Sender:
    """The sender named by ``SMS_SENDER`` ('outbox' by default)."""
    name = config.get("SMS_SENDER") or "outbox"
    try:
        factory = SENDERS[name]
    except KeyError:
        raise ValueError(f"unknown SMS_SENDER {name!r}; known: {', '.join(sorted(SENDERS))}") from None
    return factory(config, instance_path)
