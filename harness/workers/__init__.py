"""Worker processes: wire format, process control, remote implementations, the Python worker."""
