"""Traffic replay: MovieLens users played through the live REST API, clicking only what they truly liked."""

from services.simulate.plan import ReplayUser, build_plan, held_out_pairs
from services.simulate.replay import ReplayReport, replay
from services.simulate.run import DEMO_EXPERIMENT, ReplayError, run_replay, seed_demo

__all__ = [
    "DEMO_EXPERIMENT",
    "ReplayError",
    "ReplayReport",
    "ReplayUser",
    "build_plan",
    "held_out_pairs",
    "replay",
    "run_replay",
    "seed_demo",
]
