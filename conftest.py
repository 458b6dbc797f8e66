"""Root conftest: the real-infrastructure fixtures come from the shared test plugin."""

pytest_plugins = ["delego_shared.testing.plugin"]
