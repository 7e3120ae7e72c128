"""`rai-lab grade --master URL`: a class graded on a Spark cluster (docs/cluster.md).

- `driver`: the instructor's `rai-lab grade` process, the Spark driver: the local batch's intake, kept grades,
  course, reference run and outputs, with the learners graded by Spark tasks;
- `task`: a Spark task on an executor: its learners graded by the local batch's own grading loop, worker, sandbox
  and services;
- `host`: whether an executor's host may grade (the same kit as the driver's, the sandbox built for real);
- `standalone`: a Spark standalone master and workers on this machine (`rai-lab cluster`, the tests, the benchmark);
- `submit`: the script spark-submit runs (YARN, Kubernetes, any master).
"""
