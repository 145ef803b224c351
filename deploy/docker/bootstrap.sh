#!/bin/sh
# First start and every upgrade of a movierec deployment; safe to run any number of times.
#
#   movierec-bootstrap databases   create MLflow's database if it is missing (before MLflow starts)
#   movierec-bootstrap all         the above, then migrate the schema, load MovieLens 100K into an
#                                  empty database, and train once (in this process) when no model
#                                  is served: no champion in the database, no live-model pointer in
#                                  Redis, or its artifact missing from DATA_DIR
#
# Reads the same environment as every movierec process (DATABASE_URL, REDIS_URL,
# MLFLOW_TRACKING_URI, DATA_DIR, ...). The MLflow server must answer before the full run: training
# logs to it. The admin API key is not made here: the API creates it from BOOTSTRAP_API_KEY.
set -eu

log() {
    printf '%s movierec-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# Print the integer result of one SQL query on the movierec database.
scalar() {
    python - "$1" <<'PY'
import sys

from sqlalchemy import text

from db.session import create_db_engine
from services.embedded import resolve_urls
from services.settings import get_settings

engine = create_db_engine(resolve_urls(get_settings()).database_url, "cli", pool_size=1)
try:
    with engine.connect() as connection:
        sys.stdout.write(f"{int(connection.scalar(text(sys.argv[1])) or 0)}\n")
finally:
    engine.dispose()
PY
}

# Print 1 when no model is being served, else 0.
needs_training() {
    python - <<'PY'
import sys
from pathlib import Path

from redis import Redis
from sqlalchemy import text

from db.session import create_db_engine
from services.embedded import resolve_urls
from services.live_model import read_live_model
from services.settings import get_settings

urls = resolve_urls(get_settings())
engine = create_db_engine(urls.database_url, "cli", pool_size=1)
try:
    with engine.connect() as connection:
        champions = connection.scalar(text("SELECT count(*) FROM model_version WHERE status = 'champion'"))
finally:
    engine.dispose()
client = Redis.from_url(urls.redis_url)
try:
    live = read_live_model(client)
finally:
    client.close()
served = bool(champions) and live is not None and Path(live.artifact_dir).is_dir()
sys.stdout.write("0\n" if served else "1\n")
PY
}

ensure_mlflow_database() {
    python - <<'PY'
import psycopg
from psycopg import sql
from sqlalchemy import make_url

from services.embedded import resolve_urls
from services.settings import get_settings

urls = resolve_urls(get_settings())
target = make_url(urls.mlflow_backend_store_uri)
if target.get_backend_name() == "postgresql" and target.database:
    server = make_url(urls.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).fetchone()
        if found is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
            print(f"created database {target.database}")
PY
}

phase="${1:-all}"
case "$phase" in
    databases | all) ;;
    *)
        log "unknown phase '$phase' (expected: databases, all)"
        exit 2
        ;;
esac

log "checking MLflow's database"
ensure_mlflow_database
if [ "$phase" = "databases" ]; then
    exit 0
fi

log "migrating the schema"
movierec db upgrade

ratings="$(scalar 'SELECT count(*) FROM rating')"
if [ "$ratings" -eq 0 ]; then
    log "empty database: loading MovieLens 100K"
    movierec data load ml-100k
else
    log "database has $ratings ratings; not loading"
fi

if [ "$(needs_training)" -eq 1 ]; then
    log "no model is served yet: training once"
    # Exit code 3: the quality gate rejected the model; nothing would be served, so stop here.
    movierec train --sync
else
    log "a model is served; not training (the nightly retrain keeps it fresh)"
fi

log "done"
