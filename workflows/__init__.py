"""Domain rules (shared/ARCHITECTURE.md): no Flask request, no templates.

Everything here receives the acting user and returns results or raises ``WorkflowError``
with a Chinese message that views show as they are.
"""


class WorkflowError(Exception):
    """A rule refused the operation; ``message`` is shown to the user as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FormErrors(WorkflowError):
    """Several fields refused at once: ``errors`` maps a form field to its Chinese message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("；".join(errors.values()))
        self.errors = errors


class StaleObjectError(WorkflowError):
    """Another user changed the row first (optimistic locking, SPEC §5)."""

    def __init__(self, message: str = "该记录已被他人处理"):
        super().__init__(message)


class NotFoundError(WorkflowError):
    """The row does not exist or is outside the user's visibility (SPEC §1: the same thing)."""

    def __init__(self, message: str = "记录不存在或无权访问"):
        super().__init__(message)


def insert_or_refuse(session, error: WorkflowError):
    """A savepoint in which a unique constraint's violation becomes ``error``.

    The checks before an insert read the database; two requests at the same moment can both
    pass them. The constraint decides, and the loser gets the same message as if the check had
    caught it, never a 500 (e.g. two 企业注册 with one credit code, two 申报 of one specialty).
    """
    from contextlib import contextmanager

    from sqlalchemy.exc import IntegrityError

    @contextmanager
    def guarded():
        try:
            with session.begin_nested():
                yield
        except IntegrityError:
            raise error from None

    return guarded()
