"""deblurkit.eval (see the package docstring)."""
