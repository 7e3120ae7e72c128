"""Grading in a grading worker process: nbgrader's autograde of one learner at a time, and its sandbox."""
