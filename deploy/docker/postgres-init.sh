#!/usr/bin/env bash
# Creates the three databases of the deployment, owned by $POSTGRES_USER:
#   $DAGSTER_DB     Dagster's runs, event logs and schedules (dagster-postgres creates its tables)
#   $MONITORING_DB  the metric store (MetricStore.migrate() applies its alembic revisions on first use)
#   $MLFLOW_DB      the MLflow tracking server's backend store (mlflow server migrates it at start)
# The postgres image runs it once, on an empty data volume (/docker-entrypoint-initdb.d). It is safe to run
# again by hand: an existing database is left as it is.
set -euo pipefail

create_db() {
  local db="$1"
  if [ -z "$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    echo "creating database $db"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" \
      -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
  else
    echo "database $db exists"
  fi
}

for db in "${DAGSTER_DB:?}" "${MONITORING_DB:?}" "${MLFLOW_DB:?}"; do
  case "$db" in
    *[!a-zA-Z0-9_]*) echo "database name '$db' must be letters, digits and _" >&2; exit 1 ;;
  esac
  create_db "$db"
done
