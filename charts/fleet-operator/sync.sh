#!/usr/bin/env bash
# Copy the generated CRD and the operator's RBAC into the chart. The chart
# renders them from files/ (templates/crd.yaml, templates/rbac.yaml); the
# sources of truth are crds/fleetpipeline.yaml (`fleet-operator crd`) and
# charts/rbac/operator-rbac.yaml. tests/e2e/tests/helm.rs fails when the copies
# differ, naming this script.
#
# Usage: charts/fleet-operator/sync.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cp "$REPO/crds/fleetpipeline.yaml" "$HERE/files/fleetpipeline.crd.yaml"
cp "$REPO/charts/rbac/operator-rbac.yaml" "$HERE/files/operator-rbac.yaml"
echo "synced files/fleetpipeline.crd.yaml and files/operator-rbac.yaml"
