"""Package version; the Scala jar and Spark executors must carry the same one."""

__version__ = "0.1.0"
