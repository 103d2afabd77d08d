#!/usr/bin/env bash
# Let bubblewrap sandbox the notebook on runners whose AppArmor forbids unprivileged user
# namespaces (Ubuntu 24.04 images: kernel.apparmor_restrict_unprivileged_userns = 1). The
# runner is a throw-away VM, so the setting lasts for this job only.
# If it cannot be changed, grading goes on with --sandbox bwrap and stops as a grader error
# (exit 3, with bubblewrap's words): a notebook is never graded unsandboxed without notice.
# In: USERNS_SYSCTL_FILE (tests: a file instead of /proc/sys/...), SUDO (default sudo).
set -uo pipefail

knob=${USERNS_SYSCTL_FILE:-/proc/sys/kernel/apparmor_restrict_unprivileged_userns}
sudo_cmd=${SUDO:-sudo}
if [ ! -r "$knob" ] || [ "$(cat "$knob")" != 1 ]; then
  exit 0  # no such restriction here (Ubuntu 22.04 runners, most machines)
fi
echo "AppArmor restricts unprivileged user namespaces on this runner: allowing them for this job so bubblewrap can sandbox the notebook"
if ! $sudo_cmd sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; then
  echo "::error::could not run sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0: bubblewrap cannot sandbox the notebook here, so grading will stop as a grader error"
fi
exit 0
