"""Step 2: execute a notebook in a fresh, limited kernel (see runner.py and kernel_boot.py)."""
