"""Storage for the pipeline: clients from settings, names, and the table repositories."""
