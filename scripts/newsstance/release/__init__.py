"""newsstance.release stage."""
