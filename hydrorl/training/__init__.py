"""Training and evaluation in background processes that report through the database."""
