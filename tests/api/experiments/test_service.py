from collections import Counter

from db.models import Experiment, Variant
from services.api.experiments.schemas import VariantConfig
from services.api.experiments.service import BUCKETS, RunningExperiment, bucket_of

N_USERS = 100_000


def running(salt: str, weights: dict[str, int], experiment_id: int = 1) -> RunningExperiment:
    experiment = Experiment(id=experiment_id, name=f"exp-{experiment_id}", salt=salt, status="running")
    experiment.variants = [
        Variant(id=experiment_id * 10 + i, name=name, weight=weight, config={"strategy": "hybrid"})
        for i, (name, weight) in enumerate(weights.items())
    ]
    return RunningExperiment.of(experiment)


class TestBucketOf:
    def test_is_a_pure_function_of_salt_and_user(self) -> None:
        assert bucket_of("salt", 42) == bucket_of("salt", 42)
        assert all(0 <= bucket_of("salt", user_id) < BUCKETS for user_id in range(1, 1000))
        assert [bucket_of("salt", u) for u in range(1, 100)] != [
            bucket_of("other-salt", u) for u in range(1, 100)
        ]

    def test_spreads_users_evenly_over_buckets(self) -> None:
        counts = Counter(bucket_of("even", user_id) // 1000 for user_id in range(1, N_USERS + 1))
        # Ten ranges of 1,000 buckets each get 10% of users, within one percentage point.
        assert all(abs(count / N_USERS - 0.1) < 0.01 for count in counts.values())


class TestAssignment:
    def test_split_matches_the_weights_within_one_point(self) -> None:
        # given
        weights = {"control": 50, "treatment-a": 30, "treatment-b": 20}
        experiment = running("3f9a1c2b", weights)
        # when
        counts = Counter(experiment.assign(user_id).variant.name for user_id in range(1, N_USERS + 1))
        # then
        for name, weight in weights.items():
            assert abs(counts[name] / N_USERS * 100 - weight) < 1.0, (name, counts[name])

    def test_uneven_small_weights_are_respected(self) -> None:
        experiment = running("small", {"rare": 1, "common": 99})
        counts = Counter(experiment.assign(user_id).variant.name for user_id in range(1, N_USERS + 1))
        assert abs(counts["rare"] / N_USERS * 100 - 1) < 0.2

    def test_is_sticky_across_instances_and_restarts(self) -> None:
        # given: two independently built copies, as two API processes would hold
        first = running("sticky", {"a": 50, "b": 50})
        second = running("sticky", {"a": 50, "b": 50})
        # then
        for user_id in range(1, 5_000):
            assert first.assign(user_id) == second.assign(user_id) == first.assign(user_id)

    def test_experiments_with_different_salts_split_independently(self) -> None:
        # given
        one = running("salt-one", {"a": 50, "b": 50}, experiment_id=1)
        two = running("salt-two", {"a": 50, "b": 50}, experiment_id=2)
        # when
        pairs = Counter(
            (one.assign(user_id).variant.name, two.assign(user_id).variant.name)
            for user_id in range(1, N_USERS + 1)
        )
        # then: every combination gets a quarter of users (independence), within one point
        assert len(pairs) == 4
        assert all(abs(count / N_USERS - 0.25) < 0.01 for count in pairs.values())

    def test_variant_config_carries_the_strategy(self) -> None:
        experiment = running("cfg", {"a": 100})
        assert experiment.assign(7).variant.config == VariantConfig(strategy="hybrid")
        assert experiment.assign(7).variant.strategy == "hybrid"
        assert experiment.assign(7).variant.model_version is None
