"""newsstance.normalize stage."""
