"""What every domain shares: the errors services raise, database threads for async code, the
single-process channel layer and the log filter that keeps secrets out of log lines."""
