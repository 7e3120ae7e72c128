"""`rai-lab grade`: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

One concern per module:
- `rubric`: points per check, the exercise's and the bonus, and a learner's Outcome;
- `course`: nbgrader's course tree (one rule for every path in it), the gradebook, the kept grades;
- `services`: the batch's network namespace and Spark Connect server, and the clean environment;
- `workers`: the grading worker processes (rai_lab.gradeworker), one learner at a time;
- `limits`: the time limits, scaled from the reference run (timed once per course and machine);
- `batch`: the Grader, which stages and grades a batch (and starts nothing when every grade is kept);
- `reports`: grades.csv, nbgrader's export and the feedback pages;
- `stop`: SIGINT, SIGTERM and SIGHUP turned into an orderly stop (the grades made are kept).
Submissions are read by `rai_lab.intake`; each learner's kernel runs in `rai_lab.sandbox`; checks
are judged outside it by `rai_lab.sealed`.
"""

from rai_lab.grading.batch import Grader, grade
from rai_lab.grading.course import default_work_dir
from rai_lab.grading.rubric import Outcome, is_bonus, reason, rubric, split_points
from rai_lab.grading.services import SECRET_NAME, clean_environment

__all__ = ["SECRET_NAME", "Grader", "Outcome", "clean_environment", "default_work_dir", "grade", "is_bonus", "reason",
           "rubric", "split_points"]
