"""Services shared by every trigger: the Connective client, storage, configuration and models."""
