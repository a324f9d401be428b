"""Built-in demo: a procedurally drawn retina-like project and the end-to-end tutorial pipeline."""
