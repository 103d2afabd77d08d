"""Timed training: the grader trains each student architecture itself, the same way for everyone.

Sequential and functional models are rebuilt from their harvested config (design_data.py strips
or refuses data in it) in the trusted measuring process (grader/measure/worker.py); a subclassed
model, which only its class can rebuild, is built in the Keras clean room, where these modules are
copied beside grader/kernel/keras_harness.py. Either way the weights start from the grader's
values (initial.py), learnable.py says whether the design as compiled can learn at all, and the
loop is the grader's (timed_fit.py). Only predictions on the private images come back; the
grader computes accuracy.
"""
