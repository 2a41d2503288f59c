"""Generators and exact solvers for the built-in tasks, one module per task.

Each module exposes a `SPEC` (a `TaskSpec`): the task's description, seed exemplars,
reasoning techniques, a solver for BBH-format questions and a random question generator.
"""
