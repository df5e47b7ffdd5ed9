"""deblurkit.train (see the package docstring)."""
