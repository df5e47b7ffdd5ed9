"""deblurkit.app (see the package docstring)."""
