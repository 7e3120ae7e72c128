"""Grading inside a learner's sandbox: the warm kernels, the network guard, the kernel's side of replay.

Kept small; it imports nothing from `rai_lab.grading.instructor` or `rai_lab.grading.worker`.
"""
