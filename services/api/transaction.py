"""Work that must wait until the request's transaction has committed (cache invalidation, notices)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

_PENDING = "movierec_after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once `session` commits; forget it if the session rolls back."""
    session.info.setdefault(_PENDING, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for callback in session.info.pop(_PENDING, []):
        try:
            callback()
        except Exception:  # the data is committed; a failed side effect must not turn it into a 500
            logger.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
