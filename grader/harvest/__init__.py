"""Step 3, trusted side: read what the kernel left (grader/kernel/export.py wrote it) as
untrusted input: bounded, typed, pickle-free (`artifacts`)."""
