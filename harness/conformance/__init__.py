"""The conformance suite: every check as a hypothesis property, for any implementation.

``pytest --pyargs harness.conformance --impl NAME`` runs it (``--impl`` repeatable,
``module:attr`` accepted; with none, every registered implementation);
``harness.parametrize_with_checks`` puts it in a third party's own test file.
"""
