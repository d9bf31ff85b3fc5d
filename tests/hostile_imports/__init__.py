"""Modules that misbehave while being imported; each defines a correct ``backprop``
that is never reached."""
