#!/usr/bin/env bash
# Airflow from PyPI in a virtualenv, for trying (and testing) `nexusml dag export --to
# airflow`: `scripts/airflow-local.sh install` installs the pinned version into
# ${AIRFLOW_LOCAL_VENV:-/opt/nexusml-airflow} if it is not there yet, and prints the path of
# its `airflow` program. Nothing runs in the background: `airflow dags test` runs a DAG
# in-process against a SQLite database under $AIRFLOW_HOME. For example:
#   export NEXUSML_AIRFLOW=$(scripts/airflow-local.sh install | tail -1)
#   export AIRFLOW_HOME=/tmp/airflow AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags_airflow
#   nexusml dag export dags/train.toml --to airflow -o dags_airflow/train.py --store /tmp/store
#   $NEXUSML_AIRFLOW db migrate && $NEXUSML_AIRFLOW dags test nexusml_train
set -euo pipefail

venv=${AIRFLOW_LOCAL_VENV:-/opt/nexusml-airflow}
version=${AIRFLOW_VERSION:-3.1.8}

install() {
  if [ ! -x "$venv/bin/airflow" ]; then
    echo "installing apache-airflow==$version into $venv"
    python3 -m venv --clear "$venv"  # --clear: a half-made one from an earlier try is made again
    "$venv/bin/pip" install -q "apache-airflow==$version"
  fi
  "$venv/bin/airflow" version >/dev/null 2>&1
  echo "$venv/bin/airflow"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
