"""Small shared utilities (image I/O, atomic files)."""
