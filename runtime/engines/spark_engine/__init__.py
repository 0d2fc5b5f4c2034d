"""The Spark engine: a DataFrame scored on `mapInArrow`, and the CLI's `--engine spark` around it.

Modules, one concern each: `session` (a SparkSession this project starts: loopback only, UI off, quiet),
`schema` (the DataFrame's columns checked, and the output schema declared from the local engine's), `worker`
(the executor side: one Scorer per model per Python worker, made after the fork), `dataframe` (the model
checked on the driver and the `mapInArrow` call), `tracker` (progress from the rows of finished tasks),
`failures` (what a failed Spark job means to the user) and `engine` (the CLI's run: files in, a dataset of
part files out, the run's record beside `_SUCCESS`).
"""

from runtime.errors import ConfigurationError

SPARK_MISSING = "--engine spark and runtime.spark need the spark extra: pip install '.[spark]' (and Java 17+)"

try:
    import pyspark  # noqa: F401
except ImportError:
    raise ConfigurationError(SPARK_MISSING) from None

from runtime.engines.spark_engine.engine import run_spark  # noqa: E402  (after the check that pyspark is there)

__all__ = ["run_spark"]
