"""The built-in implementations, one module each.

They are registered like any plug-in: by entry points in the group
``backprop_harness.impls``, declared in this project's ``pyproject.toml``. Importing
this package registers nothing.
"""
