"""Gold annotations: inter-annotator agreement (`agree`) and adjudication (`adjudicate`)."""
