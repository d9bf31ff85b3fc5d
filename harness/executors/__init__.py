"""Executors: where tasks (plain descriptions of checks to run) run, locally or on Dask."""
