"""`rai-lab classroom`: a JupyterHub on one machine for a roster, with nbgrader's exchange and the kit's sealed grader.

One concern per module:
- `roster`: the roster file (login, name, language) and the classroom's state (classroom.json);
- `accounts`: one real Unix account per learner and for the instructor, each with its own password;
- `course`: nbgrader's exchange, the instructor's course folders, the course released, each role's Jupyter settings;
- `hubconfig`: JupyterHub's configuration (PAM login, one JupyterLab per user as that user, the grading service);
- `hub`: start, stop and remove;
- `grading`: collect, grade with `rai-lab grade`, feedback released into the exchange, late submissions;
- `service`: the instructor's grading page, a service of the Hub.
"""
