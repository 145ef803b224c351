"""The quality gate's decision, and the promotion it records in `model_version`."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import ModelVersion
from services.worker.gate import GatePolicy, decide
from services.worker.model_versions import ModelVersionRepository

POLICY = GatePolicy(max_rmse_increase=0.005, max_ndcg_decrease=0.005, max_rmse=1.1, min_ndcg=0.01)
CHAMPION = {"rmse": 0.90, "ndcg_at_10": 0.40}
NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


class TestDecide:
    def test_first_candidate_passes_the_floors(self) -> None:
        decision = decide({"rmse": 0.95, "ndcg_at_10": 0.30}, None, POLICY)
        assert decision.promote and decision.reason.startswith("first champion")

    def test_first_candidate_below_a_floor_is_rejected(self) -> None:
        decision = decide({"rmse": 1.20, "ndcg_at_10": 0.005}, None, POLICY)
        assert not decision.promote
        assert "above the floor" in decision.reason and "below the floor" in decision.reason

    @pytest.mark.parametrize(
        "candidate",
        [
            {"rmse": 0.905, "ndcg_at_10": 0.40},
            {"rmse": 0.90, "ndcg_at_10": 0.395},
            {"rmse": 0.85, "ndcg_at_10": 0.45},
        ],
    )
    def test_candidate_within_tolerance_passes(self, candidate: dict[str, float]) -> None:
        assert decide(candidate, CHAMPION, POLICY).promote

    @pytest.mark.parametrize(
        ("candidate", "reason"),
        [
            ({"rmse": 0.906, "ndcg_at_10": 0.40}, "rmse 0.9060 vs champion 0.9000"),
            ({"rmse": 0.90, "ndcg_at_10": 0.394}, "ndcg_at_10 0.3940 vs champion 0.4000"),
        ],
    )
    def test_candidate_worse_beyond_tolerance_is_rejected(
        self, candidate: dict[str, float], reason: str
    ) -> None:
        decision = decide(candidate, CHAMPION, POLICY)
        assert not decision.promote and reason in decision.reason

    def test_missing_or_nan_metric_is_rejected(self) -> None:
        assert not decide({"rmse": math.nan, "ndcg_at_10": 0.5}, CHAMPION, POLICY).promote
        assert not decide({"ndcg_at_10": 0.5}, None, POLICY).promote

    def test_negative_tolerance_rejects_an_identical_candidate(self) -> None:
        strict = GatePolicy(max_rmse_increase=-0.001, max_ndcg_decrease=0.005)
        assert not decide(CHAMPION, CHAMPION, strict).promote


class TestModelVersionRepository:
    def _create(self, repo: ModelVersionRepository, version: int) -> ModelVersion:
        return repo.create(
            name="movierec-test",
            version=version,
            mlflow_run_id=f"run{version}",
            metrics={},
            artifact_uri=f"models:/movierec-test/{version}",
        )

    def test_promotion_archives_the_previous_champion(self, session: Session) -> None:
        # given
        repo = ModelVersionRepository(session)
        first, second = self._create(repo, 1), self._create(repo, 2)
        repo.promote(first, at=NOW)
        # when
        previous = repo.promote(second, at=NOW, reason="better")
        # then
        assert previous is first and first.status == "archived"
        assert repo.get_champion("movierec-test") is second and second.reason == "better"

    def test_rejection_keeps_the_champion(self, session: Session) -> None:
        repo = ModelVersionRepository(session)
        champion, candidate = self._create(repo, 1), self._create(repo, 2)
        repo.promote(champion, at=NOW)
        repo.reject(candidate, reason="worse")
        assert repo.get_champion("movierec-test") is champion
        assert (candidate.status, candidate.reason) == ("rejected", "worse")

    def test_database_refuses_two_champions(self, session: Session) -> None:
        repo = ModelVersionRepository(session)
        first, second = self._create(repo, 1), self._create(repo, 2)
        first.status = second.status = "champion"
        with pytest.raises(IntegrityError):
            session.flush()
