"""Executors: run a partition kernel over every partition and combine the partial results.

Nothing in this package knows about estimators; nothing in the estimators knows which
executor runs them.
"""
