#!/usr/bin/env bash
# The grading step of action.yml, as a script so it can be run and tested off GitHub.
# In:  NOTEBOOK, ASSIGNMENT (optional), OUT (report folder), EXTRA_ARGS (optional),
#      GITHUB_OUTPUT and GITHUB_STEP_SUMMARY (files, as on GitHub's runners).
# Out: the Markdown report appended to the job summary; `result` (base64, the payload GitHub
#      Classroom's autograding-grading-reporter reads), `score` and `max-score` step outputs.
set -uo pipefail

: "${NOTEBOOK:?set NOTEBOOK to the notebook to grade}"
OUT=${OUT:-grader-report}
args=(check "$NOTEBOOK" --out "$OUT")
[ -n "${ASSIGNMENT:-}" ] && args+=(--assignment "$ASSIGNMENT")
# shellcheck disable=SC2206 # EXTRA_ARGS is a list of options the workflow author wrote
[ -n "${EXTRA_ARGS:-}" ] && args+=($EXTRA_ARGS)

# Student text reaches the log through the table; stop workflow commands while it prints, so a
# message like "::error::" or a fake "Autograding complete" notice is only text.
stop=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "::stop-commands::$stop"
grader "${args[@]}"
status=$?
echo "::$stop::"

if [ ! -f "$OUT/result.json" ]; then
  echo "::error::the grader produced no result (exit $status)"
  exit 1
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$OUT/report.md" >> "$GITHUB_STEP_SUMMARY"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "result=$(grader report "$OUT/result.json" --format classroom)"
    python3 - "$OUT/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"score={r['score']:g}")
print(f"max-score={r['max_score']:g}")
PY
  } >> "$GITHUB_OUTPUT"
fi
# A low score is not a failed step: Classroom's reporter decides from the result payload.
[ "$status" -le 1 ] && exit 0 || exit "$status"
