"""An operator backward-bug corpus (issue 11, item 9): correct NumPy operators (since issue
12 the NumPy provider of harness/ops) written as
mappings (forward, VJP, JVP where cheap, adversarial samples), realistic buggy variants,
each naming the checks that must flag it, and correct variants no check may flag.

``entries`` lists them (``OPERATORS``, ``BUGS``, ``VARIANTS``, ``CORRECT``); the operator
modules hold each family with its bugs and variants; ``evidence`` shows, with no engine,
that every bug really is one; ``torch_reference`` holds float64 torch equivalents.
"""
