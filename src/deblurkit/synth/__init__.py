"""deblurkit.synth (see the package docstring)."""
