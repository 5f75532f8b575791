"""Domain rules (shared/ARCHITECTURE.md): no Flask request, no templates.

Everything here receives the acting user and returns results or raises ``WorkflowError``
with a Chinese message that views show as they are.
"""


class WorkflowError(Exception):
    """A rule refused the operation; ``message`` is shown to the user as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StaleObjectError(WorkflowError):
    """Another user changed the row first (optimistic locking, SPEC §5)."""

    def __init__(self, message: str = "该记录已被他人处理"):
        super().__init__(message)


class NotFoundError(WorkflowError):
    """The row does not exist or is outside the user's visibility (SPEC §1: the same thing)."""

    def __init__(self, message: str = "记录不存在或无权访问"):
        super().__init__(message)
