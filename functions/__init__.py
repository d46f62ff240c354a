"""Lambda entry points.

HANDLER is the function's handler setting; importing this package does not import the
handler module (which loads the models).
"""

HANDLER = "functions.handler.handler"
