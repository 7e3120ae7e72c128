"""Grading in the instructor's `rai-lab grade` process: reading the submissions, the batch, the reports."""
