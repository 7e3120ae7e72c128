"""The script spark-submit runs: `rai-lab grade` on the master spark-submit was given (YARN, Kubernetes, any).

    spark-submit --master yarn --deploy-mode client [--conf ...] \\
        $(python -c 'import rai_lab.grading.cluster.submit as s; print(s.__file__)') SUBMISSIONS --out DIR [options]

It takes `rai-lab grade`'s options (not --master: spark-submit's is used, with every --conf it was given). Client
mode: the driver, so the class folder, the outputs and the reference run, is on the machine that submits.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from pyspark import SparkConf

    from rai_lab.cli import main as cli

    master = SparkConf().get("spark.master", "")  # spark-submit's, in the gateway it started
    if not master:
        print("rai-lab: run this script with spark-submit (it gives the master), or use rai-lab grade --master URL",
              file=sys.stderr)
        return 2
    return cli(["grade", *(sys.argv[1:] if argv is None else argv), "--master", master])


if __name__ == "__main__":
    sys.exit(main())
