"""Timed training: the grader trains each student architecture itself, the same way for everyone.

Sequential and functional models are rebuilt from their harvested config in a separate grader
process (`worker`); a subclassed model, which cannot be rebuilt without the student's code, is
re-created and trained inside the student's kernel. Either way only predictions on the private
images come back; the grader computes accuracy.
"""
