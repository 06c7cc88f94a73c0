"""Engine-independent numerical building blocks shared by the in-memory, Spark and Dask paths."""
