"""The `inferstack` command: one typer app (app.py), one error table (errors.py).

Nothing imports this package; it may import every other one.
"""
