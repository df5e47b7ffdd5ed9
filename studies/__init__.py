"""Studies: the scripts behind every published figure, run as ``python -m studies.<name>``."""
