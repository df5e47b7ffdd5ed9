"""deblurkit.models (see the package docstring)."""
