"""deblurkit.classical (see the package docstring)."""
