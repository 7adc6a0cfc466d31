#!/bin/bash
# resume_tenant.sh - resumes a suspended tenant (POST
# /api/tenants/<name>/resume, CONTRACT section 10).
# Exactly `nodo resume` (docs/nodo.1.md), in the seed's naming: its
# arguments, --json, --help and exit statuses.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

nodo_run resume "$@"
