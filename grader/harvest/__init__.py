"""Step 3: turn the kernel's objects into plain artifacts (JSON, pickle-free .npz).

`in_kernel` and `keras_introspect` run inside the student's kernel; `artifacts` runs in the
grader and treats everything the kernel wrote as untrusted input.
"""
