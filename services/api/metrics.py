"""Prometheus metrics of one API process, in a registry of its own (one per `create_app`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Request latencies: the cache-hit path takes about a millisecond, a miss a few, a batch tens.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric the API exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._request_children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}
        self.requests = Counter(
            "movierec_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "movierec_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache = Counter(
            "movierec_recommendation_cache",
            "Recommendation lists served from the Redis cache (hit), computed (miss) or computed "
            "because Redis was unavailable (bypass).",
            ["result"],
            registry=self.registry,
        )
        self.cache_results = {result: self.cache.labels(result) for result in ("hit", "miss", "bypass")}
        self.model_info = Gauge(
            "movierec_model_info",
            "The model version served (value 1) and its loading time.",
            ["version"],
            registry=self.registry,
        )
        self.model_loaded_at = Gauge(
            "movierec_model_loaded_timestamp_seconds",
            "When the served model was loaded (Unix time).",
            registry=self.registry,
        )
        self.model_loads = Counter(
            "movierec_model_loads",
            "Serving artifacts loaded, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.exposures = Counter(
            "movierec_ab_exposures",
            "Recommendation lists served inside an A/B experiment, by experiment and variant.",
            ["experiment", "variant"],
            registry=self.registry,
        )
        self.exposures_logged = Counter(
            "movierec_ab_exposures_logged",
            "First exposures of a user to an experiment, written to the assignment table.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "movierec_rate_limited_requests",
            "Requests refused with 429.",
            registry=self.registry,
        )
        self.fast_path = Counter(
            "movierec_fast_path_requests",
            "User-list requests served without routing and validation (plainly valid, known key).",
            registry=self.registry,
        )
        self.redis_up = Gauge(
            "movierec_redis_available",
            "1 while Redis answers, 0 while the circuit breaker skips it.",
            registry=self.registry,
        )
        self.redis_up.set(1)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one answered request.

        The labelled children are looked up once per (method, route, status), a bounded set: the
        lookup took longer than the counting.
        """
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.latency.labels(method, route), self.requests.labels(method, route, str(status)))
            self._request_children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def set_model(self, version: str, loaded_at: float) -> None:
        """Report `version` as the one served."""
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)
        self.model_loaded_at.set(loaded_at)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
