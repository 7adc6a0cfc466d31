#!/bin/bash
# suspend_tenant.sh - suspends a tenant: sessions ended, connections
# refused, data, files and DNS record kept (POST
# /api/tenants/<name>/suspend, CONTRACT section 10).
# Exactly `nodo suspend` (docs/nodo.1.md), in the seed's naming: its
# arguments, --json, --help and exit statuses.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

nodo_run suspend "$@"
