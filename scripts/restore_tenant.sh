#!/bin/bash
# restore_tenant.sh - creates the tenant <nombre_tenant> from a backup zip
# (POST /api/tenant/restore, CONTRACT sections 10 and 13).
# Exactly `nodo restore` (docs/nodo.1.md), in the seed's naming: its
# arguments, --json, --help and exit statuses.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

nodo_run restore "$@"
