"""The submitted notebook as a file: read and validated, and compared with the starter handed
out."""
