#!/usr/bin/env bash
# A local S3-compatible server on 127.0.0.1 for trying (and testing) nexusml's S3 store:
# `scripts/s3-local.sh up` installs moto's server into a virtualenv if needed, starts it
# on 127.0.0.1:${NEXUSML_S3_PORT:-5123} and creates the bucket `nexusml-test`;
# `scripts/s3-local.sh down` stops it by PID. Then, for example:
#   export AWS_ENDPOINT_URL=http://127.0.0.1:5123 AWS_ACCESS_KEY_ID=test \
#          AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
#   nexusml dag run dags/train.toml --store s3://nexusml-test/store
set -euo pipefail

state=${S3_LOCAL_STATE:-/var/lib/nexusml-s3}
port=${NEXUSML_S3_PORT:-5123}
venv=${S3_LOCAL_VENV:-/opt/nexusml-moto}

install() {
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "installing moto[server] into $venv"
    python3 -m venv --clear "$venv"  # --clear: a half-made one from an earlier try is made again
    "$venv/bin/pip" install -q 'moto[server]'
  fi
}

up() {
  mkdir -p "$state"
  install
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$state/moto.log" 2>&1 &
  echo $! > "$state/pid"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      curl -s -X PUT "http://127.0.0.1:$port/nexusml-test" > /dev/null
      echo "s3 is up: http://127.0.0.1:$port, bucket nexusml-test"
      return 0
    fi
    sleep 0.2
  done
  echo "moto_server did not answer; see $state/moto.log" >&2
  return 1
}

down() {
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    rm -f "$state/pid"
    echo "s3 is down"
  fi
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
