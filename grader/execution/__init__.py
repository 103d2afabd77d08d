"""Step 2: execute a notebook in a fresh, limited kernel (runner.py), in bubblewrap where it
works (sandbox.py). The kernel process itself starts in grader/kernel/boot.py."""
