"""A worked example of a backprop implementation for backprop-harness."""
