"""UNTRUSTED SIDE: everything here runs inside a student's process.

`boot` starts the student's kernel (limits, seeds, the served dataset via `datasets` and
`import_hooks`); `export` runs after the student's cells and only exports what the grader
measures elsewhere; `kinds/` holds the kernel's side of non-Keras objects; `numpy_harness` runs
beside the student's functions in the numpy clean room. Student code can patch anything here, so
nothing this package writes is believed: the trusted side (the rest of `grader`) validates it and
measures every scored number itself. Modules here import only the standard library, numpy,
Keras/TensorFlow and each other, never the trusted side (tests/test_layout.py checks that).
"""
