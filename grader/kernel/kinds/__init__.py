"""Harvesters for objects that are not Keras models; each module runs inside the kernel.

A module `<kind>.py` defines `export(value, obj, namespace, out) -> dict` returning an entry
with a "status" (found, wrong_type, error) and, optionally, "arrays": a file name in `out`
holding numeric arrays (np.savez, no objects). The grader reads the entry as untrusted data.
"""
