#!/usr/bin/env bash
# The grading step of action.yml, as a script so it can be run and tested off GitHub.
# In:  NOTEBOOK, ASSIGNMENT (optional), OUT (report folder), EXTRA_ARGS (optional),
#      SANDBOX (default bwrap: a runner where bubblewrap cannot start is a grader error, exit 3,
#      never a notebook graded without a sandbox), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY (files,
#      as on GitHub's runners).
# Out: the Markdown report appended to the job summary; `result` (base64, the payload GitHub
#      Classroom's autograding-grading-reporter reads), `score` and `max-score` step outputs.
#      There is always a result: a missing or renamed notebook scores 0 with the reason.
# Exit: 0 when the notebook was graded or is the student's to fix (the reporter fails the job
#      on a lost point); 3 when the grader itself failed (nothing is recorded as a grade).
set -uo pipefail

: "${NOTEBOOK:?set NOTEBOOK to the notebook to grade}"
OUT=${OUT:-grader-report}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
args=(check "$NOTEBOOK" --out "$OUT" --sandbox "${SANDBOX:-bwrap}")
[ -n "${ASSIGNMENT:-}" ] && args+=(--assignment "$ASSIGNMENT")
# shellcheck disable=SC2206 # EXTRA_ARGS is a list of options the workflow author wrote
[ -n "${EXTRA_ARGS:-}" ] && args+=($EXTRA_ARGS)

# The Python the grader was installed in (a venv's, setup-python's), not the python3 on PATH.
py=$(grader --python) || { echo "::error::the grader is not installed (grader --python failed)"; exit 3; }
rm -f "$OUT/result.json"  # only this run's result counts
errors=$(mktemp)
# Student text reaches the log through the table; stop workflow commands while it prints, so a
# message like "::error::" or a fake "Autograding complete" notice is only text.
stop=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "::stop-commands::$stop"
grader "${args[@]}" 2> "$errors"
status=$?
cat "$errors" >&2
echo "::$stop::"

if [ ! -f "$OUT/result.json" ]; then
  # The grader refused (a missing or renamed notebook, exit 2) or failed before it graded:
  # a result all the same, with the reason, so Classroom and the student see what happened.
  "$py" "$here/not_graded.py" --out "$OUT" --notebook "$NOTEBOOK" \
    --assignment "${ASSIGNMENT:-}" --exit-status "$status" --stderr "$errors" \
    --workspace "$PWD" || { echo "::error::the grader produced no result (exit $status)"; exit 1; }
  if [ "$status" = 2 ]; then
    echo "::error::$NOTEBOOK was not graded (0 points): the job summary says why"
    status=0
  fi
fi
rm -f "$errors"
outcome=$("$py" - "$OUT/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print((r.get("execution") or {}).get("status", ""))
PY
)
if [ "$outcome" = grader_error ]; then
  status=3
  echo "::error::the grader failed, not the notebook: nothing was scored (see the job summary)"
  knob=${USERNS_SYSCTL_FILE:-/proc/sys/kernel/apparmor_restrict_unprivileged_userns}
  if [ -r "$knob" ] && [ "$(cat "$knob")" = 1 ]; then
    echo "::error::AppArmor blocks the user namespaces bubblewrap needs: run sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 before grading (action.yml does)"
  fi
fi

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$OUT/report.md" >> "$GITHUB_STEP_SUMMARY"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "result=$(grader report "$OUT/result.json" --format classroom)"
    "$py" - "$OUT/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
score = r.get("score")  # null: not graded (a grader error), never a zero
print("score=" + ("" if score is None else f"{score:g}"))
print(f"max-score={r['max_score']:g}")
PY
  } >> "$GITHUB_OUTPUT"
fi
# A low score is not a failed step: Classroom's reporter decides from the result payload.
[ "$status" -le 1 ] && exit 0 || exit "$status"
