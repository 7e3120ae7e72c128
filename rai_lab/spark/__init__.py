"""Spark for the lab.

- ``session``: the Spark targets (embedded, Connect, Databricks Connect) and the session the learner gets;
- ``server``: a local Spark Connect server from the installed pyspark (``rai-lab spark``); server code,
  which the learner's kernel never imports.

This file imports nothing: ``import rai_lab.spark.session`` loads only the session's code.
"""
