"""deblurkit.infer (see the package docstring)."""
