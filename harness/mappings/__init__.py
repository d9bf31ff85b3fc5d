"""Mappings under test from each framework: ``torch_mapping`` (a PyTorch function,
``autograd.Function.apply`` or ``nn.Module``; backward = autograd), ``jax_mapping``
(a JAX function; jax.vjp / jax.jvp), and NumPy examples (``examples``). A NumPy
mapping is a ``harness.Mapping`` itself. Each framework is imported only when used."""
