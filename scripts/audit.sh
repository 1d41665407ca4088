#!/usr/bin/env bash
# `make audit` (and CI): pip-audit of every pinned package in requirements.lock against the PyPI
# vulnerability feed. pip-audit lives in its own venv (var/audit-venv) so that its dependencies are
# not mixed into the app's lock. A known vulnerability fails the run. When the feed cannot be reached
# (an offline CI, or a registry mirror without PyPI's per-version JSON), the run says how many packages
# went unaudited and passes, unless AUDIT_STRICT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_AUDIT_VERSION=2.10.1
VENV=var/audit-venv
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/pip-audit" ] || ! "$VENV/bin/pip-audit" --version 2>/dev/null | grep -q "$PIP_AUDIT_VERSION"; then
  echo "==> Installing pip-audit $PIP_AUDIT_VERSION into $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q "pip-audit==$PIP_AUDIT_VERSION" 2>&1 | grep -v '^WARNING: Location' || true
fi
report=$(mktemp)
trap 'rm -f "$report"' EXIT
rc=0
"$VENV/bin/pip-audit" --requirement requirements.lock --no-deps --disable-pip --progress-spinner off \
  --format json --output "$report" --timeout 20 || rc=$?
"$VENV/bin/python" - "$report" "$rc" "${AUDIT_STRICT:-0}" <<'PY'
import json, sys
report, rc, strict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
try:
    deps = json.load(open(report))["dependencies"]
except (OSError, ValueError, KeyError):
    print(f"pip-audit failed (exit {rc}) before it wrote a report", file=sys.stderr)
    sys.exit(1)
vulnerable = [d for d in deps if d.get("vulns")]
skipped = [d for d in deps if d.get("skip_reason")]
audited = len(deps) - len(skipped)
for d in vulnerable:
    for v in d["vulns"]:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fixed release"
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {fixes})")
print(f"pip-audit: {audited} of {len(deps)} pinned packages audited, {len(vulnerable)} with known vulnerabilities")
if skipped:
    print(f"pip-audit: {len(skipped)} not audited, e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']}")
    if audited == 0:
        print("pip-audit: the vulnerability feed could not be reached from this machine", file=sys.stderr)
if vulnerable or (strict and skipped):
    sys.exit(1)
PY
