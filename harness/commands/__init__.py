"""The command line, ``backprop-harness``: one module per subcommand, the options they
share, and the exit codes. A front end: it calls the checker, timing and training."""
