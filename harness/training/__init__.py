"""Training with any implementation: data sets, the loop and SGD update every
implementation shares, and the trajectory agreement that compares them."""
