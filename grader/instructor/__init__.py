"""The instructor's tools around grading: calibration on the reference and its variants, pinned
versions, what may be published, Gradescope bundles, and a new assignment from a reference
solution."""
