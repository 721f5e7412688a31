"""The remote: the service layer, its database and storage backends, the HTTP app and
ama-server (docs/design.md §4). Installed as ``ama_remote``."""
