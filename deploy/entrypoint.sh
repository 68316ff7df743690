#!/bin/sh
# FaceLedger container entry point: every FACELEDGER_<NAME>_FILE variable (a Docker or compose
# secret, e.g. /run/secrets/store_url) becomes FACELEDGER_<NAME> with the file's content, so
# secrets never appear in the image, the compose file or `docker inspect`. Then runs the command.
set -eu
for name in $(env | sed -n 's/^\(FACELEDGER_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  eval "file=\${${name}_FILE}"
  if [ ! -r "$file" ]; then
    echo "faceledger-entrypoint: ${name}_FILE names $file, which cannot be read" >&2
    exit 78
  fi
  value=$(cat "$file")
  export "$name=$value"
  unset "${name}_FILE"
done
exec "$@"
