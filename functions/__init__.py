"""One module per trigger family. Each stays thin over the services in `shared/`."""
