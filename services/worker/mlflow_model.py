"""The registered model as MLflow sees it: a pyfunc wrapper that loads the serving artifact.

MLflow logs this file as code ("models from code"), so nothing is pickled: loading the model
(`mlflow.pyfunc.load_model("models:/movierec@champion")`) runs this file, and `load_context` reads
the artifact's `metadata.json` and `arrays.npz` with numpy.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel, PythonModelContext
from pydantic import BaseModel

from ml.artifact import ServingModel


class RecommendationRequest(BaseModel):
    """One request to the pyfunc model."""

    user_id: int
    k: int = 10
    strategy: str | None = None


class RecommendedMovie(BaseModel):
    """One movie of a ranked list."""

    movie_id: int
    score: float
    explanation: str


class MovierecPyfunc(PythonModel):
    """Top-k recommendations from the serving artifact logged with the model."""

    model: ServingModel

    def load_context(self, context: PythonModelContext) -> None:
        """Load the serving artifact."""
        self.model = ServingModel.load(context.artifacts["serving"])

    def predict(
        self,
        context: PythonModelContext,
        model_input: list[RecommendationRequest],
        params: dict[str, str] | None = None,
    ) -> list[list[RecommendedMovie]]:
        """One ranked list per request: movie id, score, explanation."""
        return [
            [
                RecommendedMovie(movie_id=item.movie_id, score=item.score, explanation=item.explanation)
                for item in self.model.recommend(request.user_id, request.k, strategy=request.strategy)
            ]
            for request in model_input
        ]


mlflow.models.set_model(MovierecPyfunc())
