"""newsstance.studio stage."""
