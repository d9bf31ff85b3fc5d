"""Networks as chains of operators (layer 2): the chain, the built-in models, and a
network checked end to end and node by node."""
