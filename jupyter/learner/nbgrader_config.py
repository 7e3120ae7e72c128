"""nbgrader in the learner's JupyterLab (`make jupyter`): only its Validate button is on.

Validate runs the whole notebook in a new kernel and reads the visible check cells
(rai_lab/checking.py). Grading never reads this file: it uses graders/nbgrader_config.py.
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

# Embedded Spark takes 10-20 s to start on 2 cores: nbgrader's default 30 s per cell is too tight.
c.Execute.timeout = 180
