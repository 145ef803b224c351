"""Queries on `experiment`, `variant` and `assignment`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from db.models import Experiment

# One statement for a whole batch of exposures. Rows whose variant no longer belongs to the
# experiment (deleted meanwhile) are skipped rather than failing the batch.
_INSERT_EXPOSURES = text(
    """
    INSERT INTO assignment (experiment_id, user_id, variant_id, bucket, exposed_at)
    SELECT x.experiment_id, x.user_id, x.variant_id, x.bucket, x.exposed_at
    FROM unnest(
        CAST(:experiment_ids AS integer[]), CAST(:user_ids AS bigint[]), CAST(:variant_ids AS integer[]),
        CAST(:buckets AS smallint[]), CAST(:exposed_at AS timestamptz[])
    ) AS x(experiment_id, user_id, variant_id, bucket, exposed_at)
    JOIN variant ON variant.id = x.variant_id AND variant.experiment_id = x.experiment_id
    ON CONFLICT (experiment_id, user_id) DO NOTHING
    """
)


class ExperimentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_id(self, experiment_id: int) -> Experiment | None:
        return self.session.get(Experiment, experiment_id)

    def get_by_id_for_update(self, experiment_id: int) -> Experiment | None:
        query = select(Experiment).where(Experiment.id == experiment_id).with_for_update()
        return self.session.scalars(query).one_or_none()

    def get_by_name(self, name: str) -> Experiment | None:
        return self.session.scalars(select(Experiment).where(Experiment.name == name)).one_or_none()

    def list_experiments(
        self, *, status: str | None = None, offset: int = 0, limit: int = 100
    ) -> Sequence[Experiment]:
        query = select(Experiment).order_by(Experiment.id.desc()).offset(offset).limit(limit)
        if status is not None:
            query = query.where(Experiment.status == status)
        return self.session.scalars(query).all()

    def count(self, *, status: str | None = None) -> int:
        query = select(func.count()).select_from(Experiment)
        if status is not None:
            query = query.where(Experiment.status == status)
        return int(self.session.scalar(query) or 0)

    def list_running(self) -> Sequence[Experiment]:
        return self.session.scalars(select(Experiment).where(Experiment.status == "running")).all()

    def list_active_between(self, start: datetime, end: datetime) -> Sequence[Experiment]:
        """Experiments that were running at some moment in [start, end]."""
        query = select(Experiment).where(
            Experiment.started_at.is_not(None),
            Experiment.started_at <= end,
            or_(Experiment.stopped_at.is_(None), Experiment.stopped_at > start),
        )
        return self.session.scalars(query).all()

    def lock_starts(self) -> None:
        """Serialise experiment starts (one running experiment at a time)."""
        self.session.execute(select(func.pg_advisory_xact_lock(0x6D6F7665)))  # "move"

    def insert_exposures(
        self,
        *,
        experiment_ids: Sequence[int],
        user_ids: Sequence[int],
        variant_ids: Sequence[int],
        buckets: Sequence[int],
        exposed_at: Sequence[datetime],
    ) -> int:
        """Insert first exposures, ignoring users already assigned. Returns rows inserted."""
        result = self.session.execute(
            _INSERT_EXPOSURES,
            {
                "experiment_ids": list(experiment_ids),
                "user_ids": list(user_ids),
                "variant_ids": list(variant_ids),
                "buckets": list(buckets),
                "exposed_at": list(exposed_at),
            },
        )
        return int(getattr(result, "rowcount", 0) or 0)
