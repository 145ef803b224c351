#!/bin/sh
# Runs once, when the postgres container initialises an empty data volume: MLflow keeps its
# tracking store in its own database on the same server, owned by the application's user.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<EOSQL
SELECT format('CREATE DATABASE mlflow OWNER %I', current_user)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec
EOSQL
